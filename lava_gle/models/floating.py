"""``floating_pt`` CPU models: float64 Lava types around the float layer kernels.

The arithmetic is :class:`lava_gle.numerics.kernels.FloatLayer`, the NumPy engine's own, with a
batch axis of 1: a Lava run computes the very numbers of the engine at batch 1.
"""
from __future__ import annotations

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_gle.models.base import (
    AbstractGleNetworkModel, AbstractGleNeuronsModel, AbstractGleProjectionModel,
    AbstractStreamSourceModel,
)
from lava_gle.processes.gle.process import GleNeurons, GleProjection
from lava_gle.processes.network.process import GleNetworkProcess
from lava_gle.processes.stream.process import StreamSource


@implements(proc=GleNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGleNeuronsFloat(AbstractGleNeuronsModel):
    """float64 GLE neurons."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    d_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    e_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    l_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    r: np.ndarray = LavaPyType(np.ndarray, float)
    r_prime: np.ndarray = LavaPyType(np.ndarray, float)
    u_prosp: np.ndarray = LavaPyType(np.ndarray, float)
    e: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=GleProjection, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGleProjectionFloat(AbstractGleProjectionModel):
    """float64 plastic GLE projection (forward W p + b, backward W^T e, dW = eta e p^T)."""

    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    e_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    l_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    eps_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    W: np.ndarray = LavaPyType(np.ndarray, float)
    b: np.ndarray = LavaPyType(np.ndarray, float)
    eps: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=StreamSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyStreamSourceFloat(AbstractStreamSourceModel):
    """float64 input and target stream source."""

    x_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=GleNetworkProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGleNetworkFloat(AbstractGleNetworkModel):
    """float64 fused whole-network model."""

    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)
