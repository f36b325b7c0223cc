"""Arrays in shared memory, for reading a Lava run's results without ``Var.get``.

Lava moves a ``Var.get()`` one element at a time through its runtime service (about
60 us per element) and its Monitor triples the step time. lava-gle's ProcessModels
instead keep their recorded traces and their learnable parameters in files that the
host creates (on ``/dev/shm`` when it exists, so the files live in RAM) and both
sides map with ``mmap(MAP_SHARED)``: a model's writes are visible to the host at once,
and the host reads every trace in one copy after the run (or between run chunks).

A host that is killed cannot delete its files; the next host does
(:func:`remove_stale_directories`), together with the POSIX shared-memory segments of
the dead host's Lava runtime that its directory names (:func:`record_segments`).
"""
from __future__ import annotations

import mmap
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

#: Where Linux keeps POSIX shared memory (``shm_open``, Python's multiprocessing.shared_memory).
SHM_DIR = "/dev/shm"
#: The file in a shared directory that names the run's POSIX shared-memory segments.
SEGMENTS_RECORD = ".segments"


@dataclass(frozen=True)
class SharedArray:
    """A float64 (or other dtype) array of ``shape`` stored in the file ``path``.

    Instances are small, picklable descriptions: the host creates the file with
    :meth:`create`, passes the description to a ProcessModel as a process parameter,
    and each side calls :meth:`attach` to get an ndarray view of the same memory.
    """

    path: str
    shape: tuple[int, ...]
    dtype: str = "float64"

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @classmethod
    def create(cls, directory: str, name: str, shape: tuple[int, ...],
               dtype: str = "float64", init: np.ndarray | None = None) -> "SharedArray":
        """Create (zero-filled, or filled with ``init``) the file ``directory/name``."""
        arr = cls(os.path.join(directory, name), tuple(int(s) for s in shape), dtype)
        with open(arr.path, "wb") as f:
            f.truncate(arr.nbytes)
        if init is not None:
            arr.attach()[...] = init
        return arr

    def attach(self) -> np.ndarray:
        """A writable ndarray view of the shared memory (a plain ndarray, not np.memmap)."""
        if self.nbytes == 0:
            return np.zeros(self.shape, self.dtype)
        with open(self.path, "r+b") as f:
            buf = mmap.mmap(f.fileno(), self.nbytes)
        return np.frombuffer(buf, dtype=self.dtype).reshape(self.shape)

    def read(self) -> np.ndarray:
        """A private copy of the current contents."""
        return np.array(self.attach())


@dataclass(frozen=True)
class SharedCounters:
    """Named int64 counters in shared memory (the fixed-point saturation counts).

    The host creates them, every Process that counts gets the same description, adds
    to its own names through :meth:`attach`, and the host reads all of them once.
    """

    names: tuple[str, ...]
    array: SharedArray

    @classmethod
    def create(cls, directory: str, name: str, names) -> "SharedCounters":
        names = tuple(names)
        return cls(names, SharedArray.create(directory, name, (len(names),), "int64"))

    def attach(self) -> tuple[dict[str, int], np.ndarray]:
        """(name -> index, writable int64 view)."""
        return {n: i for i, n in enumerate(self.names)}, self.array.attach()

    def read(self) -> dict[str, int]:
        return dict(zip(self.names, (int(v) for v in self.array.read())))


def shared_directory(prefix: str = "lava-gle-") -> str:
    """A fresh directory ``<prefix><pid>-*`` for shared arrays: under /dev/shm if writable,
    else the temp dir. Directories that killed hosts left there are removed first
    (:func:`remove_stale_directories`)."""
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    remove_stale_directories(base, prefix)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base)


def record_segments(directory: str, names: Iterable[str]) -> None:
    """Record that the POSIX shared-memory segments ``names`` (files ``/dev/shm/<name>``,
    e.g. the ``psm_*`` of Lava's channels) belong to the run that uses ``directory``, so
    that :func:`remove_stale_directories` deletes them too if the host is killed."""
    path = os.path.join(directory, SEGMENTS_RECORD)
    with open(path + ".tmp", "w") as f:
        f.write("".join(f"{name}\n" for name in names))
    os.replace(path + ".tmp", path)  # atomic: a killed host leaves no half-written names


def remove_stale_directories(base: str, prefix: str = "lava-gle-",
                             shm: str = SHM_DIR) -> list[str]:
    """Remove this user's ``<prefix><pid>-*`` directories in ``base`` whose process is gone,
    and the shared-memory segments (in ``shm``) that their :func:`record_segments` names.

    A host that exits normally removes its directory (:func:`remove_directory`) and its
    Lava runtime unlinks its segments; one that is killed (SIGKILL, out of memory) cannot,
    and on /dev/shm its files would hold RAM until a reboot. Segments carry no owner in
    their name, so only recorded ones are removed, and only files of this user that no
    process maps or holds open (``/proc/*/maps``, ``/proc/*/fd``): while any is in use
    (the dead host's Lava processes still run), the directory is kept for a later run.
    Returns the removed directories.
    """
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    in_use = None  # files that some process uses; read once, and only if needed
    for entry in entries:
        if not _owner_is_gone(entry, prefix):
            continue
        segments = _recorded_segments(entry.path, shm)
        if segments:
            if in_use is None:
                in_use = _files_in_use()
            if in_use is None or in_use & set(segments):
                continue
            for path in segments:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def _owner_is_gone(entry: os.DirEntry, prefix: str) -> bool:
    """``entry`` is this user's ``<prefix><pid>-*`` directory and no process ``pid`` runs."""
    pid = entry.name[len(prefix):].split("-", 1)[0]
    if not (entry.name.startswith(prefix) and pid.isdigit()):
        return False
    try:
        if not entry.is_dir(follow_symlinks=False) or \
                entry.stat(follow_symlinks=False).st_uid != os.getuid():
            return False
        os.kill(int(pid), 0)  # raises when no such process exists
    except ProcessLookupError:
        return True
    except OSError:  # the process exists under another user, or the entry vanished
        pass
    return False


def _recorded_segments(directory: str, shm: str) -> list[str]:
    """Paths of the existing segments of this user that ``directory``'s record names."""
    try:
        with open(os.path.join(directory, SEGMENTS_RECORD)) as f:
            names = f.read().split()
    except OSError:
        return []
    shm = os.path.realpath(shm)
    paths = []
    for name in names:
        if "/" in name or name in (".", ".."):
            continue
        path = os.path.join(shm, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid():
            paths.append(path)
    return paths


def _files_in_use() -> set[str] | None:
    """Paths of the files that any process maps or holds open (None: /proc unreadable).

    Processes of other users are unreadable unless this is root; they cannot open this
    user's segments (mode 0600) unless they are root themselves.
    """
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    used: set[str] = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as f:
                for line in f:
                    fields = line.split(maxsplit=5)
                    if len(fields) == 6:
                        used.add(fields[5].rstrip("\n"))
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                used.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                continue
    return used


def remove_directory(path: str | None) -> None:
    """Delete a directory made by :func:`shared_directory` (mapped views stay valid)."""
    if path:
        shutil.rmtree(path, ignore_errors=True)
