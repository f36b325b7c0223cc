"""Shared arrays: what a forked child writes is what the parent reads; what killed hosts
leave behind is removed by the next one."""
from __future__ import annotations

import mmap
import multiprocessing
import os
import subprocess
import sys

import numpy as np

from lava_gle.runtime.shared_memory import (SharedArray, record_segments, remove_directory,
                             remove_stale_directories, shared_directory)


def _child(arr: SharedArray) -> None:
    view = arr.attach()
    view[1] += 10.0


def test_round_trip_and_writes_from_a_forked_process_are_visible():
    directory = shared_directory()
    try:
        init = np.arange(6.0).reshape(2, 3)
        arr = SharedArray.create(directory, "a", (2, 3), init=init)
        view = arr.attach()
        np.testing.assert_array_equal(view, init)
        proc = multiprocessing.get_context("fork").Process(target=_child, args=(arr,))
        proc.start()
        proc.join(10)
        assert proc.exitcode == 0
        np.testing.assert_array_equal(arr.read(), init + [[0.0], [10.0]])
        np.testing.assert_array_equal(view, init + [[0.0], [10.0]])  # the live view too
        assert type(view) is np.ndarray
        empty = SharedArray.create(directory, "empty", (0, 4))
        assert empty.attach().shape == (0, 4)
    finally:
        remove_directory(directory)


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(gone.stdout)


def test_directories_of_killed_hosts_are_removed(tmp_path):
    dead = tmp_path / f"lava-gle-{_dead_pid()}-abc"
    alive = tmp_path / f"lava-gle-{os.getpid()}-def"
    other = tmp_path / "lava-gle-x1y2"  # not ours to judge: no pid in the name
    for d in (dead, alive, other):
        d.mkdir()
        (d / "a").write_bytes(b"0" * 8)
    assert remove_stale_directories(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and alive.exists() and other.exists()
    assert remove_stale_directories(str(tmp_path / "missing")) == []


def test_recorded_segments_of_killed_hosts_are_removed_once_unused(tmp_path):
    base, shm = tmp_path / "base", tmp_path / "shm"
    base.mkdir()
    shm.mkdir()
    for name in ("psm_free", "psm_other", "psm_mapped", "psm_open"):
        (shm / name).write_bytes(b"\0" * 64)
    (tmp_path / "outside").write_bytes(b"x")
    pid = _dead_pid()
    dead = base / f"lava-gle-{pid}-abc"
    dead.mkdir()
    record_segments(str(dead), ["psm_free", "psm_missing", "../outside"])
    assert remove_stale_directories(str(base), shm=str(shm)) == [str(dead)]
    assert not dead.exists() and not (shm / "psm_free").exists()
    assert (shm / "psm_other").exists()  # nobody recorded it: not ours to judge
    assert (tmp_path / "outside").exists()  # a record names files in shm only

    busy = base / f"lava-gle-{pid}-def"
    busy.mkdir()
    record_segments(str(busy), ["psm_mapped", "psm_open"])
    with open(shm / "psm_mapped", "r+b") as f:
        view = mmap.mmap(f.fileno(), 64)  # mapped, its descriptor closed
    handle = open(shm / "psm_open", "rb")
    try:
        assert remove_stale_directories(str(base), shm=str(shm)) == []
        view.close()
        assert remove_stale_directories(str(base), shm=str(shm)) == []  # still open
    finally:
        view.close()
        handle.close()
    assert (shm / "psm_mapped").exists() and (shm / "psm_open").exists() and busy.exists()
    assert remove_stale_directories(str(base), shm=str(shm)) == [str(busy)]
    assert not (shm / "psm_mapped").exists() and not (shm / "psm_open").exists()
