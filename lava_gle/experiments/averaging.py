"""Polyak averaging of a training run's weights, kept on the host.

Online (batch 1) GLE learning at a useful rate leaves the read-out leaning towards the
classes of the last samples it was taught: the weights fluctuate around what they learn.
An exponential moving average of the weights over the last few dozen samples removes most
of that (``docs/experiments-log.md``, "Session 29"). A host reading a chip's weights after each
sample can keep the average; the chip's learning is untouched, and the averaged weights are
the network that is tested and deployed. This is a host-side step, not the learning
engine's: a synaptic tag might hold the average (``dt = 2**-s (w - t)``), but only where it
does not already hold the weight's low-order bits (weight tags); that is not modelled.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

#: The parameter kinds averaged: what the forward sum reads. tau_m, the normalisers' running
#: means (already averages) and, under chip timing, the backward array (not read in
#: inference) stay as they learn; so do weight tags (the low-order bits the forward sum
#: does not read).
AVERAGED = ("W", "b")


class WeightAverage:
    """Exponential moving average of the weights and biases of an engine's kernels.

    After every ``every``-th training batch :meth:`update` moves each average ``a`` towards
    the kernel's array ``x`` by ``every (x - a) / window``; ``window`` is in batches (batch
    1: samples), so the average spans about as many batches whatever ``every``. The
    average starts at the engine's parameters when constructed. It is float64 whatever the
    arithmetic; a fixed-point kernel is given it rounded to its integers (half to even),
    which are within the weight range because every averaged value is.
    """

    def __init__(self, engine, window: float, every: int = 1) -> None:
        if not window >= 1:
            raise ValueError(f"window must be >= 1 batch, got {window!r}")
        if not 1 <= every <= window:
            raise ValueError(f"every must be 1 to the window ({window!r}), got {every!r}")
        self.rate = every / window
        self.means = [{kind: np.array(k.parameters()[kind], dtype=np.float64)
                       for kind in AVERAGED} for k in engine.kernels.layers]

    def update(self, engine) -> None:
        """Every average moves ``every / window`` of the way to its array."""
        for means, k in zip(self.means, engine.kernels.layers):
            params = k.parameters()
            for kind, mean in means.items():
                mean += self.rate * (params[kind] - mean)

    def arrays(self) -> dict[str, np.ndarray]:
        """The averages by checkpoint name (``average.<kind>.<layer index>``)."""
        return {f"average.{kind}.{l}": mean.copy() for l, means in enumerate(self.means)
                for kind, mean in means.items()}

    def load(self, arrays) -> None:
        """Put back the averages of :meth:`arrays` (a checkpoint's records)."""
        for l, means in enumerate(self.means):
            for kind, mean in means.items():
                mean[...] = arrays[f"average.{kind}.{l}"]

    def apply(self, engine) -> None:
        """Give the engine's kernels the averages, in their own dtype, for good."""
        for means, k in zip(self.means, engine.kernels.layers):
            params = k.parameters()
            k.load({kind: _native(mean, params[kind].dtype) for kind, mean in means.items()})

    @contextmanager
    def applied(self, engine) -> Iterator[None]:
        """The engine with the averaged parameters inside the block, its own after it."""
        own = [{kind: k.parameters()[kind].copy() for kind in AVERAGED}
               for k in engine.kernels.layers]
        self.apply(engine)
        try:
            yield
        finally:
            for params, k in zip(own, engine.kernels.layers):
                k.load(params)


def _native(mean: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``mean`` in a kernel's dtype: rounded half to even for integers."""
    return np.rint(mean).astype(dtype) if np.issubdtype(dtype, np.integer) else mean.astype(dtype)
