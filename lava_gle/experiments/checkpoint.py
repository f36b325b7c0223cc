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
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lava_gle.errors import LavaGleError
from lava_gle.optim import Adam
from lava_gle.results import OutputError, atomic_write

#: Name of the checkpoint file inside an experiment's output directory.
CHECKPOINT_NAME = "checkpoint.npz"
#: Name of the lock file that exists inside an experiment's output directory while it runs.
LOCK_NAME = "run.lock"


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
    """The arrays or progress counters of a checkpoint: a missing key is a damaged file."""

    def __init__(self, path: Path, what: str, items: dict):
        super().__init__(items)
        self._path = path
        self._what = what

    def __missing__(self, key: str):
        raise _damaged(self._path, f"no {self._what} {key!r}")


def _damaged(path: Path, reason: str) -> CheckpointDamagedError:
    return CheckpointDamagedError(
        f"checkpoint {path} is damaged ({reason}); pass --fresh to discard it and start "
        "afresh")


def _parameter_lists(engine) -> dict[str, list[np.ndarray]]:
    """The engine's own evolving parameter arrays, by kind.

    The float engine's ``weights``/``biases``/``tau_m`` (tau_m shared with its
    constants), or the fixed-point engine's integer ``w``/``b`` and, where tau_m
    learns, its integer time constants ``t`` (its ``weights`` and ``tau_m`` are
    dequantised copies).
    """
    if hasattr(engine, "q"):  # lava_gle.fixed_engine.FixedEngine
        out = {"W": engine.w, "b": engine.b}
        if any(t is not None for t in engine.t):
            out["t"] = engine.t
        return out
    return {"W": engine.weights, "b": engine.biases, "tau_m": engine.tau_m}


def engine_arrays(engine, prefix: str) -> dict[str, np.ndarray]:
    """Everything that evolves in a stepping engine, as named arrays.

    Keys: ``{prefix}W.l``, ``b.l`` (and ``tau_m.l``) per layer index l, the neuron
    state ``{prefix}state.l.<field>``, the errors sent down ``{prefix}eps.l``,
    ``{prefix}steps_done``, saturation counters ``{prefix}sat.<key>`` of the
    fixed-point engine, and the optimiser's moments when it is an Adam.
    """
    out: dict[str, np.ndarray] = {}
    for kind, arrays in _parameter_lists(engine).items():
        for l, a in enumerate(arrays):
            if a is not None:
                out[f"{prefix}{kind}.{l}"] = a.copy()
    if engine.state is not None:
        for l, st in enumerate(engine.state):
            for field, value in st._asdict().items():
                out[f"{prefix}state.{l}.{field}"] = value.copy()
        for l, eps in enumerate(engine.eps):
            out[f"{prefix}eps.{l}"] = eps.copy()
    out[f"{prefix}steps_done"] = np.array(engine.steps_done)
    for key, n in getattr(engine, "saturation", {}).items():
        out[f"{prefix}sat.{key}"] = np.array(n)
    optimizer = getattr(engine, "optimizer", None)
    if isinstance(optimizer, Adam):
        sd = optimizer.state_dict()
        out[f"{prefix}adam.t"] = np.array(sd["t"])
        out[f"{prefix}adam.lr"] = np.array(optimizer.lr)
        out[f"{prefix}adam.lr_tau"] = np.array(optimizer.lr_tau)
        for key in sd["m"]:
            out[f"{prefix}adam.m.{key}"] = sd["m"][key]
            out[f"{prefix}adam.v.{key}"] = sd["v"][key]
    return out


def restore_engine(engine, arrays: dict[str, np.ndarray], prefix: str) -> None:
    """Put the arrays of :func:`engine_arrays` back into ``engine`` (in place).

    The state is rebuilt through ``engine.reset`` so it has the engine's own state
    type (float or fixed-point), then every saved field is put back.
    """
    for kind, params in _parameter_lists(engine).items():
        for l, a in enumerate(params):
            if a is not None:
                a[...] = arrays[f"{prefix}{kind}.{l}"]
    if hasattr(engine, "derive_constants"):
        engine.derive_constants()  # a fixed engine's Euler factors follow its learned tau_m
    state_keys = [k for k in arrays if k.startswith(f"{prefix}state.0.")]
    if state_keys:
        engine.reset(arrays[state_keys[0]].shape[0])
        for l, st in enumerate(engine.state):
            engine.state[l] = st._replace(**{f: arrays[f"{prefix}state.{l}.{f}"].copy()
                                             for f in st._fields})
        engine.eps = [arrays[f"{prefix}eps.{l}"].copy() for l in range(len(engine.eps))]
    engine.steps_done = int(arrays[f"{prefix}steps_done"])
    for key in getattr(engine, "saturation", {}):
        engine.saturation[key] = int(arrays[f"{prefix}sat.{key}"])
    optimizer = getattr(engine, "optimizer", None)
    if isinstance(optimizer, Adam) and f"{prefix}adam.t" in arrays:
        m_pre, v_pre = f"{prefix}adam.m.", f"{prefix}adam.v."
        optimizer.load_state_dict({
            "t": int(arrays[f"{prefix}adam.t"]),
            "m": {k[len(m_pre):]: v for k, v in arrays.items() if k.startswith(m_pre)},
            "v": {k[len(v_pre):]: v for k, v in arrays.items() if k.startswith(v_pre)}})
        optimizer.lr = float(arrays[f"{prefix}adam.lr"])
        optimizer.lr_tau = float(arrays[f"{prefix}adam.lr_tau"])


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

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, progress)`` of the saved run, or ``None`` when there is none.

        Raises :class:`CheckpointDamagedError` for a file that is not a readable checkpoint
        (also later, when a record the run looks up is missing from ``arrays`` or
        ``progress``), and :class:`CheckpointMismatchError` for one of another configuration.
        """
        if not self.path.exists():
            return None
        try:
            data = np.load(self.path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _damaged(self.path, "a single array, not an .npz archive")
            with data:
                arrays = {k: np.array(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise _damaged(self.path, f"{type(exc).__name__}: {exc}") from None
        try:
            meta = json.loads(str(arrays.pop("__meta__")))
            config, progress = meta["config"], meta["progress"]
        except (KeyError, TypeError, ValueError) as exc:
            raise _damaged(self.path, f"no valid run record: {type(exc).__name__} {exc}") from None
        if not isinstance(config, dict) or not isinstance(progress, dict):
            raise _damaged(self.path, "the run record is not a mapping")
        diff = sorted(k for k in set(config) | set(self.config)
                      if config.get(k) != self.config.get(k) and k not in self.may_change)
        if diff:
            raise CheckpointMismatchError(
                f"{self.path} belongs to a run with different settings ({', '.join(diff)}: "
                f"{[config.get(k) for k in diff]} there, "
                f"{[self.config.get(k) for k in diff]} now); choose another --out or pass "
                f"--fresh to discard it")
        return (_Records(self.path, "array", arrays),
                _Records(self.path, "progress record", progress))

    def discard(self) -> None:
        """Delete the checkpoint (``--fresh``)."""
        self.path.unlink(missing_ok=True)


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
