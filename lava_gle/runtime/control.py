"""Running a built network on Lava's runtime, and always stopping it.

Lava forks one OS process per leaf Process, one per runtime service and a shared
memory manager. ``Runtime.stop()`` waits for every one of them to answer, so it can
block forever when a model died (an exception inside a model, or Ctrl-C, which
reaches the forked children too). So :func:`run_in_chunks` forks the Lava processes
with SIGINT ignored (Ctrl-C then interrupts only the host, and the children stay alive
to be stopped politely), turns SIGTERM to the host into ``SystemExit`` while it runs,
and :func:`stop_runtime` runs the polite stop with a deadline and then terminates
whatever Lava children are still alive.

Killed processes are handled too. The forked Lava processes get SIGKILL from the kernel
when the host dies (:func:`lava_gle.runtime.fork_safety.children_die_with_this_thread`), and the
names of the runtime's shared-memory segments are recorded in the run's shared directory,
so the next run removes them if nothing else did
(:func:`lava_gle.runtime.shared_memory.remove_stale_directories`). While a chunk runs, the host waits
for the runtime service's answer *or* the death of any Lava process: a killed model
(which Lava would wait for forever) ends the run with :class:`LavaRunError` naming it.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import shared_memory

from lava_gle.runtime.fork_safety import children_die_with_this_thread, prepare_for_lava

prepare_for_lava()  # before the first Lava import (see lava_gle.runtime.fork_safety)

from lava.magma.compiler.builders.py_builder import PyProcessBuilder
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import RunConfig
from tqdm.auto import tqdm

from lava_gle.errors import LavaGleError
from lava_gle.runtime.shared_memory import record_segments

#: Seconds a Lava process that exited by itself (a model that raised) leaves the runtime
#: service to report the failure before the run is stopped as "died".
REPORT_GRACE = 2.0


class LavaRunError(LavaGleError, RuntimeError):
    """A Lava ProcessModel raised (the message carries the model's own traceback), or a
    Lava OS process died during the run (the message names it)."""


def run_in_chunks(root: AbstractProcess, run_cfg: RunConfig, steps: int, *, chunk: int,
                  progress: bool = False, desc: str = "lava",
                  callback: Callable[[int], None] | None = None,
                  directory: str | None = None) -> None:
    """Run ``steps`` Lava steps as ``RunSteps(chunk)`` calls, each waited for.

    If ``root`` has no runtime yet, it is created first (compile, fork) with SIGINT
    ignored and the parent-death signal armed, so the forked Lava processes ignore Ctrl-C
    and are killed with the host; the names of its shared-memory segments are then
    recorded in ``directory`` (the run's :func:`lava_gle.runtime.shared_memory.shared_directory`), if
    given. The runtime's processes must not outlive the calling thread. A progress bar
    (``progress``) advances per chunk; ``callback(steps_done)`` is called after each
    chunk, while the runtime is paused (shared arrays may be read then).
    The caller must call :func:`stop_runtime` afterwards, also on errors.

    Raises :class:`LavaRunError` if a model raises or a Lava process dies.
    """
    if root.runtime is None:
        with _children_ignore_sigint(), children_die_with_this_thread():
            root.create_runtime(run_cfg=run_cfg)  # compiles and forks the Lava processes
        if directory is not None:
            record_segments(directory, _segment_names(root.runtime))
    runtime = root.runtime
    with _sigterm_exits(), _Answers(runtime) as answers, \
            tqdm(total=steps, desc=desc, unit="step", disable=not progress,
                 mininterval=0.5) as bar:
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            root.run(condition=RunSteps(num_steps=n, blocking=False), run_cfg=run_cfg)
            answers.wait()
            try:
                runtime.wait()  # reads the answers, which are there already
            except RuntimeError as exc:
                raise LavaRunError(_model_failure(root, exc)) from None
            done += n
            bar.update(n)
            if callback is not None:
                callback(done)


def _segment_names(runtime) -> list[str]:
    """Names of the POSIX shared-memory segments (``/dev/shm/<name>``) of Lava's channels."""
    smm = getattr(getattr(runtime, "_messaging_infrastructure", None), "smm", None)
    return [h.name for h in getattr(smm, "_shared_memory_handles", [])]


class _Answers:
    """Waits for the runtime services' answers to a run command, watching the Lava processes.

    Lava's own wait blocks forever on a service whose model was killed; this one returns
    when every service has answered and raises :class:`LavaRunError` when a Lava process
    died instead. Event driven: the services' receive ports wake a pipe when an answer
    arrives, and each process's sentinel becomes readable when it ends.
    """

    def __init__(self, runtime) -> None:
        self.ports = list(runtime.service_to_runtime)
        self.actors = list(runtime._messaging_infrastructure.actors)
        self.names = dict(zip((a.pid for a in self.actors), _actor_names(runtime)))
        self._lock = threading.Lock()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)

    def __enter__(self) -> "_Answers":
        return self

    def __exit__(self, *exc) -> None:
        for port in self.ports:
            port.observer = None
        with self._lock:  # a port's thread may be inside _wake: close only after it
            os.close(self._read)
            os.close(self._write)
            self._write = -1

    def _wake(self) -> None:
        with self._lock:
            if self._write >= 0:
                try:
                    os.write(self._write, b"\0")
                except BlockingIOError:  # the pipe is full of wake-ups already
                    pass

    def wait(self) -> None:
        """Return once every service's answer is there; raise LavaRunError if a process
        was killed, or exited without the failure report following within REPORT_GRACE."""
        for port in self.ports:  # Lava's own wait resets the observers: set them each time
            port.observer = self._wake  # called from the port's thread when data arrives
        watched = {actor.sentinel: actor for actor in self.actors}
        exited, deadline = None, None
        while not all(port.probe() for port in self.ports):
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise LavaRunError(self._died(exited))
            ready = multiprocessing.connection.wait([self._read, *watched], timeout)
            if self._read in ready:
                os.read(self._read, 4096)
            for actor in (watched.pop(s) for s in ready if s in watched):
                multiprocessing.Process.join(actor, 1.0)  # the base class's, with a timeout
                if actor.exitcode is None or actor.exitcode < 0:  # killed: no report comes
                    raise LavaRunError(self._died(actor))
                if exited is None:  # a model that raised exits; Lava reports why
                    exited, deadline = actor, time.monotonic() + REPORT_GRACE

    def _died(self, actor) -> str:
        code = actor.exitcode
        if code is None:
            how = "ended"
        elif code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited (code {code}) and no failure was reported"
        what = self.names.get(actor.pid, "a Lava Process")
        return (f"the Lava OS process of {what} (pid {actor.pid}) {how} during the run; "
                f"the run was stopped")


def _actor_names(runtime) -> list[str]:
    """What each of the runtime's OS processes runs, in the order Lava forked them (its
    Python Processes, then its runtime services); [] if that cannot be told."""
    executable = getattr(runtime, "_executable", None)
    actors = runtime._messaging_infrastructure.actors
    try:
        names = [f"Process {proc.name!r} ({builder.proc_model.__name__})"
                 for proc, builder in executable.proc_builders.items()
                 if isinstance(builder, PyProcessBuilder)]
        names += [f"runtime service {builder.rs_class.__name__}"
                  for builder in executable.runtime_service_builders.values()]
    except AttributeError:
        return []
    return names if len(names) == len(actors) else []


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
    Shared-memory segments that Lava's manager left (because it was killed) are unlinked.

    Safe to call more than once, and on a Process that never ran.
    """
    runtime = getattr(root, "runtime", None) if root is not None else None
    if runtime is None:
        return
    infra = getattr(runtime, "_messaging_infrastructure", None)
    actors = list(getattr(infra, "actors", []))
    segments = _segment_names(runtime)  # before a stop forgets them
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
    _unlink_segments(segments)
    # A Runtime stops itself again when garbage-collected if it thinks it is started.
    runtime._is_started = False
    runtime._is_running = False


def _unlink_segments(names: list[str]) -> None:
    """Unlink the shared-memory segments ``names`` that still exist (normally Lava's
    manager process has unlinked them all)."""
    for name in names:
        try:
            segment = shared_memory.SharedMemory(name)
        except FileNotFoundError:
            continue
        segment.close()
        segment.unlink()


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
