"""The Lava runtime is always stopped: no OS process survives an exception or an interrupt."""
from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest

from conftest import GoldenCase
from lava_gle.runtime import LavaNetwork
from lava_gle.runtime.control import LavaRunError
from lava_gle.numerics.kernels import FloatLayer


def child_pids() -> set[int]:
    """PIDs of this process's children (from /proc, every thread). A thread that ends
    while it is read hands its children to another thread of the process: read again."""
    me = os.getpid()
    while True:
        pids: set[int] = set()
        try:
            for tid in os.listdir(f"/proc/{me}/task"):
                with open(f"/proc/{me}/task/{tid}/children") as f:
                    pids |= {int(p) for p in f.read().split()}
        except FileNotFoundError:  # the thread ended between listdir and open
            continue
        return pids


@pytest.fixture(scope="module")
def mlp_streams():
    case = GoldenCase("visible_mlp")
    return case.net, case.inputs[:300], case.targets[:300]


@pytest.fixture(scope="module")
def baseline(mlp_streams):
    """Children that outlive any run (multiprocessing's resource tracker), after one clean run."""
    net, x, y = mlp_streams
    with LavaNetwork(net) as sim:
        sim.run(x[:5], y[:5])
    return child_pids()


@pytest.mark.lava
def test_exception_inside_a_model_stops_every_lava_process(mlp_streams, baseline, monkeypatch):
    net, x, y = mlp_streams
    calls = []

    def failing_learn(self, *args):
        calls.append(1)
        if len(calls) > 120:
            raise FloatingPointError("injected failure in a projection model")
        return learn(self, *args)

    learn = FloatLayer.learn_synapses
    monkeypatch.setattr(FloatLayer, "learn_synapses", failing_learn)  # the forked models inherit it
    with LavaNetwork(net, chunk=50) as sim:
        running, shared = [], []

        def watch(done: int) -> None:
            running.append(child_pids() - baseline)
            shared.append(sim._directory)

        with pytest.raises(LavaRunError, match="injected failure in a projection model"):
            sim.run(x, y, callback=watch)
    assert running and len(running[0]) >= 2 * len(net.layers) + 2  # Lava really was running
    assert child_pids() == baseline
    assert os.path.isabs(shared[0]) and not os.path.exists(shared[0])  # shared arrays deleted


@pytest.mark.lava
def test_interrupt_between_chunks_stops_every_lava_process(mlp_streams, baseline):
    net, x, y = mlp_streams

    def interrupt(done: int) -> None:
        if done >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with LavaNetwork(net, chunk=50) as sim:
            sim.run(x, y, callback=interrupt)
    assert child_pids() == baseline
    assert sim._directory is None  # shared arrays removed too


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler, as in a terminal. A test runner started in the
    background of a non-interactive shell inherits SIGINT = ignore (POSIX), and Python
    then installs no handler: Ctrl-C could not be tested there."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.lava
def test_ctrl_c_during_a_chunk_stops_every_lava_process(mlp_streams, baseline, capfd,
                                                        python_sigint):
    """SIGINT to the host and to every Lava process, as a terminal's Ctrl-C sends it to the
    whole process group, in the middle of a blocking chunk: the Lava processes ignore it
    (no tracebacks from them) and are stopped by the host."""
    net, x, y = mlp_streams
    x, y = np.tile(x, (40, 1, 1)), np.tile(y, (40, 1, 1))  # long enough to be interrupted
    sent, armed, errors = [], [], []

    def ctrl_c() -> None:  # runs in a timer thread: keep its failures for the test
        try:
            lava = {a.pid for a in sim.built.root.runtime._messaging_infrastructure.actors}
            assert lava <= child_pids() - baseline, (lava, child_pids(), baseline)
            for pid in lava:
                os.kill(pid, signal.SIGINT)
            sent.append(len(lava))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    def arm(done: int) -> None:  # after the first chunk: the Lava processes exist
        if not armed:
            armed.append(threading.Timer(0.2, ctrl_c))
            armed[0].start()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with LavaNetwork(net, fused=False, chunk=100) as sim:
            sim.run(x, y, callback=arm)
    assert not errors, errors
    assert sent and sent[0] >= 2 * len(net.layers) + 2
    assert time.monotonic() - start < 60  # interrupted, not run to the end
    assert child_pids() == baseline
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.lava
def test_sigterm_to_the_host_stops_every_lava_process(mlp_streams, baseline):
    """A job manager's SIGTERM to the host in the middle of a chunk ends the run with
    SystemExit(143) after the Lava processes were stopped, none left orphaned."""
    net, x, y = mlp_streams
    x, y = np.tile(x, (40, 1, 1)), np.tile(y, (40, 1, 1))
    armed = []

    def arm(done: int) -> None:
        if not armed:
            armed.append(threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)))
            armed[0].start()

    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        with LavaNetwork(net, fused=False, chunk=100) as sim:
            sim.run(x, y, callback=arm)
    assert info.value.code == 143
    assert time.monotonic() - start < 60
    assert child_pids() == baseline
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
