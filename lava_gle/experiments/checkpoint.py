"""Checkpoints of an experiment run: save, load and resume without lost work.

A checkpoint is one ``.npz`` file of flat, named float/int arrays plus a JSON
``meta`` record (the run's configuration and progress counters), written
atomically (:func:`lava_gle.results.atomic_write`), so an interrupted write never
leaves a broken checkpoint behind. A checkpoint damaged otherwise (truncated, empty,
not an archive, records missing) is refused with one line that points to ``--fresh``.
Engine and optimiser state are stored exactly (float64/float32 bit patterns), so a
resumed run continues with the very same numbers as an uninterrupted one.

:func:`run_lock` keeps a second run out of a directory while the first is alive.

:class:`InterruptGuard` turns Ctrl-C into a flag the training loop checks at
its next safe point (a chunk or batch boundary), where it saves and stops.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lava_gle.errors import LavaGleError
from lava_gle.numerics.fingerprint import CONTINUATION_STEPS, continuation, fixed_arithmetic
from lava_gle.provenance import code_version, describe
from lava_gle.quantize import QuantizationWarning
from lava_gle.results import OutputError, atomic_write

#: Name of the checkpoint file inside an experiment's output directory.
CHECKPOINT_NAME = "checkpoint.npz"
#: Name of the lock file that exists inside an experiment's output directory while it runs.
LOCK_NAME = "run.lock"


def run_record(experiment: str, backend: str, config: Any) -> dict[str, Any]:
    """What a run's checkpoint records to identify it: the experiment, the backend and the
    fields of the dataclass ``config``. (Whether this lava-gle continues a fixed-point
    run's integers as the one that wrote it is checked on the engines themselves:
    :meth:`Checkpoint.restore`.)"""
    return {"experiment": experiment, "backend": backend, **asdict(config)}


class ExperimentInterrupted(LavaGleError):
    """The run was stopped by Ctrl-C after saving a checkpoint; rerun to resume."""


class CheckpointMismatchError(LavaGleError):
    """The output directory holds a checkpoint of a differently configured run."""


class CheckpointDamagedError(LavaGleError):
    """The checkpoint file cannot be read, or records it needs are missing."""


class OutputInUseError(LavaGleError):
    """Another live run holds the output directory's lock."""


@contextmanager
def run_lock(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``out_dir/run.lock`` for the duration of a run; refuse when a live run holds it.

    The lock is an exclusive ``fcntl.flock`` on the file, which the kernel releases when
    its holder ends in any way, so a lock file left by a killed run (its pid dead) is
    simply taken over. The file holds the owner's pid for the error message and is
    removed when the block ends. Raises :class:`OutputInUseError` naming the pid and
    the directory.
    """
    path = Path(out_dir) / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise OutputError(f"--out: cannot create the lock file {path} "
                              f"({exc.strerror or exc}); choose a writable directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputInUseError(
                f"--out {out_dir} is in use by another run (pid {owner}, lock file {path}); "
                "wait for it to end or stop it, or choose another --out") from None
        try:  # the previous holder may have removed the file between our open and flock
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev,
                                                                         mine.st_ino):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield path
    finally:
        path.unlink(missing_ok=True)  # still holding the lock: nobody else has it
        os.close(fd)


class _Records(dict):
    """The arrays or progress counters of a checkpoint: a missing key is a damaged file.
    Keys are the stored names without ``prefix`` (see :meth:`under`)."""

    def __init__(self, path: Path, what: str, items: dict, prefix: str = ""):
        super().__init__(items)
        self._path, self._what, self._prefix = path, what, prefix

    def __missing__(self, key: str):
        raise _damaged(self._path, f"no {self._what} {self._prefix + key!r}")

    def under(self, prefix: str) -> "_Records":
        """The records whose names start with ``prefix``, without it."""
        return _Records(self._path, self._what,
                        {k[len(prefix):]: v for k, v in self.items() if k.startswith(prefix)},
                        self._prefix + prefix)


def _damaged(path: Path, reason: str) -> CheckpointDamagedError:
    return CheckpointDamagedError(
        f"checkpoint {path} is damaged ({reason}); pass --fresh to discard it and start "
        "afresh")


def engine_arrays(engine, prefix: str) -> dict[str, np.ndarray]:
    """The engine's :meth:`~lava_gle.numerics.engine.Engine.state_dict` under ``prefix``."""
    return {f"{prefix}{k}": v for k, v in engine.state_dict().items()}


def restore_engine(engine, arrays: "_Records", prefix: str) -> None:
    """Put the arrays of :func:`engine_arrays` back into ``engine`` (in place); a missing
    one is a damaged checkpoint."""
    engine.load_state_dict(arrays.under(prefix))


class Checkpoint:
    """The checkpoint file of one run directory.

    Parameters
    ----------
    out_dir : path
        The experiment's output directory.
    config : dict
        JSON-ready configuration of the run; :meth:`load` refuses a checkpoint
        written with a different configuration.
    may_change : tuple of str
        Configuration keys a resumed run may change (e.g. ``epochs``: extend or end a
        run early).
    """

    def __init__(self, out_dir: str | os.PathLike, config: dict[str, Any],
                 may_change: tuple[str, ...] = ()):
        self.path = Path(out_dir) / CHECKPOINT_NAME
        self.config = json.loads(json.dumps(config))
        self.may_change = may_change

    def save(self, arrays: dict[str, np.ndarray], progress: dict[str, Any]) -> None:
        """Atomically write ``arrays`` and the JSON-ready ``progress`` record."""
        meta = json.dumps({"config": self.config, "progress": progress})
        with atomic_write(self.path) as fh:
            np.savez(fh, __meta__=np.array(meta), **arrays)

    def recorded_config(self) -> dict[str, Any] | None:
        """The configuration the saved run recorded, or ``None`` when there is none
        (:class:`CheckpointDamagedError` for a file that is not a readable checkpoint)."""
        saved = self.record()
        return None if saved is None else saved[0]

    def record(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(config, progress)`` the saved run recorded, or ``None`` when there is none;
        reads the run record only, not the arrays (checks before a resume stay cheap)."""
        saved = self._read(keep=lambda name: False)
        return None if saved is None else (
            saved[1], _Records(self.path, "progress record", saved[2]))

    def history(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]] | None:
        """``(config, progress, history)`` the saved run recorded (``history``: its
        ``history.<key>`` arrays, one value per epoch it ran), or ``None`` when there is
        none; reads no other array."""
        saved = self._read(keep=lambda name: name.startswith("history."))
        return None if saved is None else (saved[1], saved[2], saved[0])

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, progress)`` of the saved run, or ``None`` when there is none.

        Raises :class:`CheckpointDamagedError` for a file that is not a readable checkpoint
        (also later, when a record the run looks up is missing from ``arrays`` or
        ``progress``), and :class:`CheckpointMismatchError` for one of another configuration.
        """
        saved = self._read()
        if saved is None:
            return None
        arrays, config, progress = saved
        self._refuse_other(config)
        return (_Records(self.path, "array", arrays),
                _Records(self.path, "progress record", progress))

    def check(self) -> None:
        """Raise :class:`CheckpointMismatchError` where a saved run has other settings, as
        :meth:`load` would; reads the run record only. For runs that do long work before
        they load their own checkpoint (a fixed-point run trains its float twin first)."""
        saved = self.record()
        if saved is not None:
            self._refuse_other(saved[0])

    def restore(self, engines: dict[str, Any]
                ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """:meth:`load`, then put the engines' arrays (name prefix -> engine) back and
        check, for each fixed-point engine, that this lava-gle continues its integers as
        the one that wrote the checkpoint did: the fingerprint recorded under
        ``continuation`` in the progress record
        (:func:`~lava_gle.numerics.fingerprint.continuation`) is recomputed (a checkpoint
        of before records none: :meth:`_refuse_other` compared its fingerprint of the
        whole arithmetic instead). Raises
        :class:`CheckpointMismatchError` when it differs, and for a fixed-point engine
        whose checkpoint records neither fingerprint."""
        saved = self.load()
        if saved is None:
            return None
        arrays, progress = saved
        recorded = progress.get("continuation", {})
        whole = "integer_arithmetic" in self.recorded_config()
        for prefix, engine in engines.items():
            restore_engine(engine, arrays, prefix)
            if prefix not in recorded and not whole and engine.kernels.arithmetic != "float":
                raise CheckpointMismatchError(
                    f"{self.path} records no fingerprint of the integers of "
                    f"'{prefix.rstrip('.')}' (written by {describe(progress.get('lava_gle'))}"
                    f", or edited), so whether this {describe(code_version())} continues "
                    "them as its writer did cannot be checked; resume it with the lava-gle "
                    "that wrote it, or choose another --out or pass --fresh to discard it")
            now = continuation(engine) if prefix in recorded else None
            if now != recorded.get(prefix):
                raise CheckpointMismatchError(
                    f"{self.path} was written by {describe(progress.get('lava_gle'))}, "
                    f"which continues this run's integers otherwise than this "
                    f"{describe(code_version())}: {CONTINUATION_STEPS} steps of "
                    f"'{prefix.rstrip('.')}' from the saved state end in other integers "
                    f"(fingerprint {recorded[prefix]} there, {now} now); "
                    f"resume it with that lava-gle, or choose another --out or pass --fresh "
                    f"to discard it")
        return arrays, progress

    def _refuse_other(self, config: dict[str, Any]) -> None:
        for key in ("experiment", "backend"):  # another kind of run: said as such
            if key in config and key in self.config and config[key] != self.config[key]:
                raise CheckpointMismatchError(
                    f"{self.path} belongs to a run of {key} {config[key]!r}, not "
                    f"{self.config[key]!r}; choose another --out or pass --fresh to discard it")
        diff = sorted(k for k in set(config) | set(self.config) if k != "integer_arithmetic"
                      and config.get(k) != self.config.get(k) and k not in self.may_change)
        if diff:
            raise CheckpointMismatchError(
                f"{self.path} belongs to a run with different settings ({', '.join(diff)}: "
                f"{[config.get(k) for k in diff]} there, "
                f"{[self.config.get(k) for k in diff]} now); choose another --out or "
                f"pass --fresh to discard it")
        legacy = config.get("integer_arithmetic")  # checkpoints before the continuation's
        if legacy is not None and legacy != fixed_arithmetic():
            raise CheckpointMismatchError(
                f"{self.path} was written by a lava-gle whose fixed-point integers differ "
                f"from this one's (integer_arithmetic {legacy} there, {fixed_arithmetic()} "
                f"now; a checkpoint this old records no fingerprint of its own run's "
                f"integers, so any change of the arithmetic refuses it); resume it with "
                f"that lava-gle, or choose another --out or pass --fresh to discard it")

    def _read(self, keep: Callable[[str], bool] = lambda name: True
              ) -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, Any]] | None:
        """``(arrays, config, progress)`` of the file (``arrays``: the members whose name
        ``keep`` accepts), or ``None`` when there is none."""
        if not self.path.exists():
            return None
        try:
            data = np.load(self.path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _damaged(self.path, "a single array, not an .npz archive")
            with data:
                names = [k for k in data.files if k == "__meta__" or keep(k)]
                arrays = {k: data[k] for k in names}
            raw = sorted(k for k, v in arrays.items() if isinstance(v, bytes))
            if raw:  # NumPy hands back the bytes of a member that is not an .npy file
                raise _damaged(self.path, f"member {raw[0]!r} is not an array")
            arrays = {k: np.array(v) for k, v in arrays.items()}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise _damaged(self.path, f"{type(exc).__name__}: {exc}") from None
        try:
            meta = json.loads(str(arrays.pop("__meta__")))
            config, progress = meta["config"], meta["progress"]
        except (KeyError, TypeError, ValueError) as exc:
            raise _damaged(self.path, f"no valid run record: {type(exc).__name__} {exc}") from None
        if not isinstance(config, dict) or not isinstance(progress, dict):
            raise _damaged(self.path, "the run record is not a mapping")
        return arrays, config, progress

    def discard(self) -> None:
        """Delete the checkpoint and set the discarded run's log and metrics aside, as
        ``log.discarded.txt`` and ``metrics.discarded.json`` (``--fresh``): the new run's
        log would otherwise continue the old one's (read per epoch, e.g. by
        ``benchmarks/mnist1d_draws.py``), and its metrics stand until the new run ends."""
        self.path.unlink(missing_ok=True)
        for name, aside in (("log.txt", "log.discarded.txt"),
                            ("metrics.json", "metrics.discarded.json")):
            if (self.path.parent / name).exists():
                os.replace(self.path.parent / name, self.path.parent / aside)


class InterruptGuard:
    """Context manager that defers Ctrl-C (SIGINT) to the loop's next safe point.

    The first Ctrl-C sets :attr:`requested`; the loop saves a checkpoint and stops.
    A second Ctrl-C interrupts immediately (KeyboardInterrupt). Outside the main
    thread (where signal handlers cannot be installed) it does nothing.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "InterruptGuard":
        try:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class ResumableRun:
    """The bookkeeping every training loop shares: resume, Ctrl-C, periodic checkpoints.

    On entry (a context manager) it installs an :class:`InterruptGuard` unless ``guard``
    is given (an object with a boolean ``requested``) and silences per-chunk
    fixed-point saturation warnings (the counts go into the metrics); on exit it restores
    both, and closes the progress bar of :meth:`progress_bar`. :meth:`resume` restores
    the ``engines`` (name prefix -> engine) and the ``history`` lists (in place) from a
    saved checkpoint and returns the caller's other records; :meth:`tick` at each safe
    point of the loop saves every ``every_s`` seconds, and when Ctrl-C was pressed saves,
    logs and raises :class:`ExperimentInterrupted`; :meth:`finish` saves the end state.
    ``state()`` gives ``(arrays, progress)`` of the caller's other records whenever a
    checkpoint is written; the progress record's ``elapsed_s`` (:attr:`elapsed`, seconds
    of training over all runs), ``lava_gle`` (the code that saved it,
    :func:`~lava_gle.provenance.code_version`) and, for fixed-point engines,
    ``continuation`` (:meth:`Checkpoint.restore`) are kept here.
    """

    def __init__(self, ckpt: Checkpoint, engines: dict[str, Any], history: dict[str, list],
                 state: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any]]],
                 log: Callable[[str], None], guard=None, fresh: bool = False,
                 every_s: float = 30.0):
        self.ckpt, self.engines, self.state, self.log = ckpt, engines, state, log
        self.history = history
        self._bar = None
        self.every_s = every_s
        self.elapsed = 0.0
        self._own_guard = guard is None
        self.guard = InterruptGuard() if guard is None else guard
        if fresh:
            ckpt.discard()

    def __enter__(self) -> "ResumableRun":
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore", QuantizationWarning)
        if self._own_guard:
            self.guard.__enter__()
        self._start = self._last_save = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._own_guard:
            self.guard.__exit__(*exc)
        self._warnings.__exit__(*exc)

    def progress_bar(self, total: int, initial: int, desc: str, unit: str, quiet: bool):
        """A tqdm progress bar the run closes when it ends."""
        self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=quiet,
                         mininterval=0.5)
        return self._bar

    def resume(self) -> tuple["_Records", "_Records"] | None:
        """Restore the engines from the checkpoint and return ``(arrays, progress)`` (the
        caller's records), or None when there is no checkpoint."""
        saved = self.ckpt.restore(self.engines)
        if saved is None:
            return None
        arrays, progress = saved
        epochs = next((len(v) for k, v in arrays.items() if k.startswith("history.")), 0)
        for key, values in self.history.items():
            # a record a checkpoint of an earlier lava-gle lacks: NaN for its epochs
            values[:] = (arrays[f"history.{key}"].tolist() if f"history.{key}" in arrays
                         else [float("nan")] * epochs)
        self.elapsed = float(progress["elapsed_s"])
        return arrays, progress

    @property
    def seconds(self) -> float:
        """Seconds of training so far, over all runs of the experiment."""
        return self.elapsed + time.perf_counter() - self._start

    def save(self) -> None:
        """Write a checkpoint now."""
        now = time.perf_counter()
        self.elapsed += now - self._start
        self._start = self._last_save = now
        arrays, progress = self.state()
        arrays.update({f"history.{k}": np.asarray(v, dtype=np.float64)
                       for k, v in self.history.items()})
        for prefix, engine in self.engines.items():
            arrays.update(engine_arrays(engine, prefix))
        digests = {prefix: continuation(engine) for prefix, engine in self.engines.items()
                   if engine.kernels.arithmetic != "float"}
        self.ckpt.save(arrays, {**progress, "elapsed_s": self.elapsed,
                                "lava_gle": code_version(),
                                **({"continuation": digests} if digests else {})})

    def tick(self, where: str) -> None:
        """A safe point of the loop (``where``: e.g. ``step 300 of 1000``): checkpoint when
        due, and stop with a checkpoint when Ctrl-C was pressed."""
        if self.guard.requested or time.perf_counter() - self._last_save > self.every_s:
            self.save()
            if self.guard.requested:
                self.log(f"interrupted at {where}; checkpoint saved, rerun the same command "
                         "to resume")
                raise ExperimentInterrupted(f"interrupted at {where}; checkpoint "
                                            f"{self.ckpt.path} saved: rerun the same command "
                                            "to resume")

    def finish(self) -> None:
        """Save the end state (a rerun of a finished experiment resumes at its end)."""
        self.save()
