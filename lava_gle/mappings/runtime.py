"""Running a built network on Lava's runtime, and always stopping it.

Lava forks one OS process per leaf Process, one per runtime service and a shared
memory manager. ``Runtime.stop()`` waits for every one of them to answer, so it can
block forever when a model died (an exception inside a model, or Ctrl-C, which
reaches the forked children too). So :func:`run_in_chunks` forks the Lava processes
with SIGINT ignored (Ctrl-C then interrupts only the host, and the children stay alive
to be stopped politely), turns SIGTERM to the host into ``SystemExit`` while it runs,
and :func:`stop_runtime` runs the polite stop with a deadline and then terminates
whatever Lava children are still alive.
"""
from __future__ import annotations

import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from lava_gle.forking import prepare_for_lava

prepare_for_lava()  # before the first Lava import (see lava_gle.forking)

from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import RunConfig
from tqdm.auto import tqdm

from lava_gle.errors import LavaGleError


class LavaRunError(LavaGleError, RuntimeError):
    """A Lava ProcessModel raised; the message carries the model's own traceback."""


def run_in_chunks(root: AbstractProcess, run_cfg: RunConfig, steps: int, *, chunk: int,
                  progress: bool = False, desc: str = "lava",
                  callback: Callable[[int], None] | None = None) -> None:
    """Run ``steps`` Lava steps as blocking ``RunSteps(chunk)`` calls.

    If ``root`` has no runtime yet, it is created first (compile, fork) with SIGINT
    ignored, so the forked Lava processes ignore Ctrl-C. A progress bar
    (``progress``) advances per chunk; ``callback(steps_done)`` is called after each
    chunk, while the runtime is paused (shared arrays may be read then).
    The caller must call :func:`stop_runtime` afterwards, also on errors.
    """
    if root.runtime is None:
        with _children_ignore_sigint():
            root.create_runtime(run_cfg=run_cfg)  # compiles and forks the Lava processes
    with _sigterm_exits(), tqdm(total=steps, desc=desc, unit="step", disable=not progress,
                                mininterval=0.5) as bar:
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            try:
                root.run(condition=RunSteps(num_steps=n), run_cfg=run_cfg)
            except RuntimeError as exc:
                raise LavaRunError(_model_failure(root, exc)) from None
            done += n
            bar.update(n)
            if callback is not None:
                callback(done)


@contextmanager
def _signal_handler(signum: int, handler) -> Iterator[None]:
    """Install ``handler`` for ``signum`` inside the block, restore the previous one after.
    Outside the main thread signals cannot be changed: no-op."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _children_ignore_sigint():
    """Processes forked inside this block inherit SIGINT = ignore."""
    return _signal_handler(signal.SIGINT, signal.SIG_IGN)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def _sigterm_exits():
    """While the runtime runs, SIGTERM to the host raises SystemExit(143) in it, so the
    caller's ``finally`` stops the Lava processes instead of leaving them orphaned (the
    default SIGTERM action ends the host at once)."""
    return _signal_handler(signal.SIGTERM, _raise_exit)


def _model_failure(root: AbstractProcess, exc: RuntimeError) -> str:
    """The tracebacks the failed model processes reported (Lava only logs them)."""
    runtime = root.runtime
    traces = []
    for actor in getattr(getattr(runtime, "_messaging_infrastructure", None), "actors", []):
        try:
            info = actor.exception
        except (OSError, ValueError):  # its pipe is closed: nothing was reported
            info = None
        if info:
            traces.append(str(info[1]).strip())
    detail = "\n".join(traces) if traces else "(no traceback was reported)"
    return f"a Lava ProcessModel failed during the run ({exc}):\n{detail}"


def stop_runtime(root: AbstractProcess | None, timeout: float = 5.0) -> None:
    """Stop ``root``'s runtime if it was started; terminate its OS processes if stop hangs.

    The polite ``Runtime.stop()`` is tried only while every Lava OS process is alive
    (it waits forever for an answer from a dead one) and for at most ``timeout`` s.

    Safe to call more than once, and on a Process that never ran.
    """
    runtime = getattr(root, "runtime", None) if root is not None else None
    if runtime is None:
        return
    infra = getattr(runtime, "_messaging_infrastructure", None)
    actors = list(getattr(infra, "actors", []))
    if getattr(runtime, "_is_started", False) and all(_alive(a) for a in actors):
        stopper = threading.Thread(target=_quiet_stop, args=(runtime,), daemon=True)
        stopper.start()
        stopper.join(timeout)
        if stopper.is_alive():
            _terminate(actors)
            stopper.join(timeout)
    _terminate(actors)
    smm = getattr(infra, "smm", None)
    if smm is not None:
        try:
            smm.shutdown()
        except Exception:  # already shut down by a successful stop()
            pass
    # A Runtime stops itself again when garbage-collected if it thinks it is started.
    runtime._is_started = False
    runtime._is_running = False


def _quiet_stop(runtime) -> None:
    try:
        runtime.stop()
    except Exception:  # a dead model makes stop() complain; the actors are terminated next
        pass


def _alive(actor) -> bool:
    try:
        return multiprocessing.Process.is_alive(actor)
    except ValueError:  # joined and closed
        return False


def _terminate(actors) -> None:
    # Lava's SystemProcess overrides join() without a timeout; use the base class's.
    proc = multiprocessing.Process
    for actor in actors:
        try:
            if not proc.is_alive(actor):
                continue
            actor.terminate()
            proc.join(actor, 2.0)
            if proc.is_alive(actor):
                actor.kill()
                proc.join(actor, 2.0)
        except ValueError:  # the process object was already joined and closed
            continue
