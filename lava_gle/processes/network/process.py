"""A whole layered GLE network, with its input and target streams, as one Lava Process."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from lava_gle.processes.gle.process import Recording
from lava_gle.runtime.shared_memory import SharedArray


@dataclass(frozen=True)
class LayerMemory:
    """Where the fused model keeps one layer's learnable parameters and its recording.

    ``arrays``: the shared arrays by kind, in the kernels' own units (the kinds of the
    kernel's ``parameters``: ``W`` [n, m], ``b`` [n], ``tau_m`` [n] only where tau_m
    learns; under chip timing ``B`` [n, m] and its transpose ``drift`` figures [3]; with
    weight tags ``tag_W``, ``tag_b``, ``tag_B``: :class:`lava_gle.numerics.kernels.
    FixedLayer`), and ``recording`` (None records nothing)."""

    arrays: dict[str, SharedArray]
    recording: Recording | None


class GleNetworkProcess(AbstractProcess):
    """Every layer of a GLE network in one Process: the same step as the structural
    network (:class:`~lava_gle.processes.gle.process.GleNeurons` and
    :class:`~lava_gle.processes.gle.process.GleProjection` per layer, see their
    equations), computed by one model, so a step costs one Lava barrier instead of
    one per population and projection.

    At Lava step ``k`` the model performs GLE step ``t = k - 1`` with input
    ``x[t]`` and target ``y[t]``; all layers update from the previous step's state
    (layer l sees r_{l-1}^- and the error W_{l+1}^T e_{l+1} of the previous step;
    layer 1 sees x_t; the output error uses r_L^-), then learning applies
    ``W += eta e p^T``, ``b += eta e`` per layer.

    Parameters
    ----------
    engine : Engine
        The NumPy engine (:class:`lava_gle.numerics.engine.Engine`) over the network's kernels,
        built on the host; the model runs its ``step`` at batch 1, one GLE step per Lava
        step, so a fused run computes exactly what the engine computes.
    x : ndarray [steps, input size]
    y : ndarray [steps, output size] (mse), [steps, 1] (ce class index), or None
    layers : list of LayerMemory, one per layer
    reset_interval : int
        If > 0, all state is zeroed at the start of every block of this many steps.
    saturation : SharedCounters or None
        Where a fixed_pt model keeps its saturation counts (float models ignore it).

    Vars
    ----
    x, y : the streams (y is zeros [steps, 1] without targets).
    """

    def __init__(self, *, engine, x: np.ndarray, y: np.ndarray | None,
                 layers: list[LayerMemory], reset_interval: int = 0,
                 saturation=None, name: str | None = None) -> None:
        x = np.asarray(x, dtype=np.float64)
        y_arr = np.zeros((x.shape[0], 1)) if y is None else np.asarray(y, dtype=np.float64)
        super().__init__(engine=engine, layers=tuple(layers), has_target=y is not None,
                         reset_interval=int(reset_interval), saturation=saturation,
                         name=name)
        self.x = Var(shape=x.shape, init=x)
        self.y = Var(shape=y_arr.shape, init=y_arr)
