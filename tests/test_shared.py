"""Shared arrays: what a forked child writes is what the parent reads."""
from __future__ import annotations

import multiprocessing

import numpy as np

from lava_gle.shared import SharedArray, remove_directory, shared_directory


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


def test_directories_of_killed_hosts_are_removed(tmp_path):
    import os
    import subprocess
    import sys
    from lava_gle.shared import remove_stale_directories
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f"lava-gle-{int(gone.stdout)}-abc"
    alive = tmp_path / f"lava-gle-{os.getpid()}-def"
    other = tmp_path / "lava-gle-x1y2"  # not ours to judge: no pid in the name
    for d in (dead, alive, other):
        d.mkdir()
        (d / "a").write_bytes(b"0" * 8)
    assert remove_stale_directories(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and alive.exists() and other.exists()
    assert remove_stale_directories(str(tmp_path / "missing")) == []
