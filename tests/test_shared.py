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
