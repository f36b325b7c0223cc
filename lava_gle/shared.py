"""Arrays in shared memory, for reading a Lava run's results without ``Var.get``.

Lava moves a ``Var.get()`` one element at a time through its runtime service (about
60 us per element) and its Monitor triples the step time. lava-gle's ProcessModels
instead keep their recorded traces and their learnable parameters in files that the
host creates (on ``/dev/shm`` when it exists, so the files live in RAM) and both
sides map with ``mmap(MAP_SHARED)``: a model's writes are visible to the host at once,
and the host reads every trace in one copy after the run (or between run chunks).
"""
from __future__ import annotations

import mmap
import os
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np


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


def remove_stale_directories(base: str, prefix: str = "lava-gle-") -> list[str]:
    """Remove this user's ``<prefix><pid>-*`` directories in ``base`` whose process is gone.

    A host that exits normally removes its directory (:func:`remove_directory`); one that
    is killed (SIGKILL, out of memory) cannot, and on /dev/shm its files would hold RAM
    until a reboot. Returns the removed paths.
    """
    removed = []
    try:
        entries = list(os.scandir(base))
    except OSError:
        return removed
    for entry in entries:
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if not (entry.name.startswith(prefix) and pid.isdigit()):
            continue
        try:
            if not entry.is_dir(follow_symlinks=False) or \
                    entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)  # raises when no such process exists
        except ProcessLookupError:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
        except OSError:  # the process exists under another user, or the entry vanished
            continue
    return removed


def remove_directory(path: str | None) -> None:
    """Delete a directory made by :func:`shared_directory` (mapped views stay valid)."""
    if path:
        shutil.rmtree(path, ignore_errors=True)
