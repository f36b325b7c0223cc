"""Stream source: sends one row of the input (and target) array per time step."""
from __future__ import annotations

import numpy as np

from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class StreamSource(AbstractProcess):
    """Sends ``x[k - 1]`` on ``x_out`` and ``y[k - 1]`` on ``y_out`` at Lava step ``k``.

    The input stream x_t is wired straight into the first projection, so layer 1 sees
    x_t in the same step (no delay); the target stream y_t goes to the output neurons.
    A direct port link adds no delay, so Lava step ``k`` carries GLE step ``t = k - 1``
    everywhere in the structural network. One process serves both streams (one Lava
    process less per step than a source per stream).

    Parameters
    ----------
    x : ndarray [steps, n_in]
        Input rows, one per step.
    y : ndarray [steps, n_y] or None
        Target rows: n_y = output size for ``mse``, 1 (the class index as a float) for
        ``ce``. None: no targets; ``y_out`` sends nothing.
    kernels : FloatKernels or FixedKernels
        The network's kernels (:mod:`lava_gle.numerics.kernels`): their ``encode`` turns the rows
        into what the layers consume (fixed point: payloads).
    saturation : SharedCounters or None
        Where fixed-point kernels count clipped inputs and targets.

    Vars
    ----
    x : [steps, n_in]
    y : [steps, n_y] (zeros [steps, 1] without targets)

    Ports
    -----
    x_out : OutPort [n_in]
    y_out : OutPort [n_y]
    """

    def __init__(self, *, x: np.ndarray, y: np.ndarray | None = None, kernels=None,
                 saturation=None, name: str | None = None) -> None:
        x = np.asarray(x, dtype=np.float64)
        y_arr = np.zeros((x.shape[0], 1)) if y is None else np.asarray(y, dtype=np.float64)
        if x.ndim != 2 or y_arr.ndim != 2 or y_arr.shape[0] != x.shape[0]:
            raise ValueError(f"StreamSource needs x [steps, n] and y [steps, m], got shapes "
                             f"{x.shape} and {y_arr.shape}")
        super().__init__(has_target=y is not None, kernels=kernels, saturation=saturation,
                         name=name)
        self.x = Var(shape=x.shape, init=x)
        self.y = Var(shape=y_arr.shape, init=y_arr)
        self.x_out = OutPort(shape=(x.shape[1],))
        self.y_out = OutPort(shape=(y_arr.shape[1],))
