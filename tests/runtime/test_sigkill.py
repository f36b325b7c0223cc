"""SIGKILL of a Lava run's host or of one of its Lava processes leaves nothing behind and
hangs nothing: real `lava-gle simulate` runs in a subprocess, processes found via /proc."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import GOLDEN, REPO
from lava_gle.runtime.shared_memory import remove_directory, shared_directory

WAIT = 30.0  # s: the longest any of these tests waits for something to happen


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc/<pid>/task/*/children, recursively)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    kids = {int(k) for k in f.read().split()} - found
            except OSError:
                continue
            found |= kids
            todo.extend(kids)
    return found


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mapped_segments(pid: int) -> set[str]:
    """The POSIX shared-memory files (Python's ``psm_*``) that process ``pid`` maps."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return {line.split()[-1] for line in f if "/dev/shm/psm_" in line}
    except OSError:
        return set()


def is_resource_tracker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"resource_tracker" in f.read()
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)


@pytest.fixture
def lava_run(tmp_path):
    """Start ``lava-gle simulate`` on a long visible_mlp stream; returns (process, stderr
    path, pids of its Lava processes and resource tracker) once the run steps."""
    case = GOLDEN / "visible_mlp"
    x = np.tile(np.load(case / "inputs.npy"), (50, 1, 1))  # 40000 steps: far from done
    y = np.tile(np.load(case / "targets.npy"), (50, 1, 1))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    started: list[tuple[subprocess.Popen, set[int], set[str]]] = []

    def start(backend: str) -> tuple[subprocess.Popen, Path, set[int]]:
        err = tmp_path / "stderr.txt"
        with open(err, "w") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "lava_gle.cli", "simulate",
                 str(case / "network.json"), "--inputs", str(tmp_path / "x.npy"),
                 "--targets", str(tmp_path / "y.npy"), "--backend", backend,
                 "--out", str(tmp_path / "out.npz")],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=f)
        kids: set[int] = set()
        segments: set[str] = set()
        started.append((proc, kids, segments))
        # the progress bar appears once the runtime was created (every Lava process built)
        wait_until(lambda: proc.poll() is not None or "step" in err.read_text(),
                   "the run's progress bar")
        assert proc.poll() is None, err.read_text()
        kids |= descendants(proc.pid)
        segments |= mapped_segments(proc.pid)
        return proc, err, set(kids)

    yield start
    for proc, kids, segments in started:  # whatever a failed test left behind
        for pid in [proc.pid, *kids]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(WAIT)
        for path in segments:
            if os.path.exists(path):
                os.unlink(path)


@pytest.mark.lava
@pytest.mark.parametrize("backend", ["lava-float", "lava-fixed-fused"])
def test_killed_host_takes_its_lava_processes_and_shared_memory_along(lava_run, backend):
    proc, err, kids = lava_run(backend)
    segments = mapped_segments(proc.pid)
    assert len(kids) >= 4 and segments  # Lava really runs: service, models, manager, tracker
    proc.kill()
    proc.wait(WAIT)
    wait_until(lambda: not any(alive(p) for p in kids), f"the end of {sorted(kids)}")
    # with every holder gone, multiprocessing's resource tracker unlinks the segments
    wait_until(lambda: not any(os.path.exists(s) for s in segments), "segments unlinked")


@pytest.mark.lava
def test_next_run_removes_the_shared_memory_of_a_killed_run(lava_run):
    """Host and resource tracker killed together (as by the OOM killer or `kill -9` of the
    process group): nobody is left to unlink the run's segments but the next run."""
    proc, err, kids = lava_run("lava-float")
    segments = mapped_segments(proc.pid)
    tracker = [p for p in kids if is_resource_tracker(p)]
    assert len(tracker) == 1 and segments
    os.kill(tracker[0], signal.SIGKILL)
    proc.kill()
    proc.wait(WAIT)
    wait_until(lambda: not any(alive(p) for p in kids), f"the end of {sorted(kids)}")
    left = {s for s in segments if os.path.exists(s)}
    assert left == segments  # nothing else removes them
    mine = [e for e in os.listdir("/dev/shm") if e.startswith(f"lava-gle-{proc.pid}-")]
    assert len(mine) == 1
    remove_directory(shared_directory())  # what the next run does first
    assert not any(os.path.exists(s) for s in segments)
    assert not os.path.exists(f"/dev/shm/{mine[0]}")


@pytest.mark.lava
def test_killed_lava_process_ends_the_run_with_an_error(lava_run):
    proc, err, kids = lava_run("lava-float")
    models = sorted(p for p in kids if mapped_segments(p))  # the manager and tracker map none
    assert len(models) >= 3
    victim = models[0]
    os.kill(victim, signal.SIGKILL)
    assert proc.wait(WAIT) == 2
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert lines[-1].startswith("error: the Lava OS process of ")
    assert f"(pid {victim}) was killed by SIGKILL" in lines[-1]
    assert "Traceback" not in err.read_text()
    wait_until(lambda: not any(alive(p) for p in kids), f"the end of {sorted(kids)}")
