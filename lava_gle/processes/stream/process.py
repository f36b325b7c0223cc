"""Stream source: sends one row of a ``[steps, n]`` array per time step."""
from __future__ import annotations

import numpy as np

from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class StreamSource(AbstractProcess):
    """Sends ``data[k - 1]`` on ``s_out`` at Lava time step ``k`` (k = 1, 2, ...).

    Used for the GLE input stream (x_t, wired straight into the first projection,
    so layer 1 sees x_t in the same step: no delay) and the target stream (y_t,
    wired into the output neurons). A direct port link adds no delay, so Lava step
    ``k`` carries GLE step ``t = k - 1`` everywhere in the structural network.

    Parameters
    ----------
    data : ndarray [steps, n]
        One row per step; for cross-entropy targets n = 1 and the row holds the
        class index as a float.

    Vars
    ----
    data : [steps, n]

    Ports
    -----
    s_out : OutPort [n]
    """

    def __init__(self, *, data: np.ndarray, name: str | None = None) -> None:
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"StreamSource data must be [steps, n], got shape {data.shape}")
        super().__init__(name=name)
        self.data = Var(shape=data.shape, init=data)
        self.s_out = OutPort(shape=(data.shape[1],))
