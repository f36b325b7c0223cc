"""``floating_pt`` CPU models: float64 Lava types plus :class:`FloatArithmetic`.

The arithmetic is :mod:`lava_gle.arithmetic.floating` (the NumPy engine's step
functions) and the learning step is GLE's SGD rule (``floating.sgd_step_single``, the
batch-1 in-place form of ``local_gradients`` + :class:`lava_gle.optim.SGD`), so a
Lava run and an engine run compute the same numbers up to rounding (~1e-16).
"""
from __future__ import annotations

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_gle.arithmetic import floating as F
from lava_gle.models.base import (
    AbstractGleNetworkModel, AbstractGleNeuronsModel, AbstractGleProjectionModel,
    AbstractStreamSourceModel,
)
from lava_gle.optim import SGD
from lava_gle.processes.gle.process import GleNeurons, GleProjection
from lava_gle.processes.network.process import GleNetworkProcess
from lava_gle.processes.stream.process import StreamSource


class FloatArithmetic:
    """The float64 :class:`~lava_gle.models.base.StepArithmetic`: the engine's functions."""

    dtype = np.float64

    def from_float(self, x, name=None):
        return np.asarray(x, dtype=np.float64)

    def to_float(self, x, name=None):
        return x

    def neuron_constants(self, dt, tau_m, tau_r, gamma, prospective, phi, size):
        return F.NeuronConstants.build(dt, tau_m, tau_r, gamma, prospective, phi, size)

    def zero_state(self, n):
        return F.zero_state((n,))

    neuron_step = staticmethod(F.neuron_step)
    output_error = staticmethod(F.output_error)
    forward_drive = staticmethod(F.forward_drive)
    backward_error = staticmethod(F.backward_error)

    def learn(self, w, b, e, p, eta, learn_bias):
        F.sgd_step_single(w, b, e, p, eta, learn_bias)

    def learn_tau(self, consts, e, udot, eta_tau, tau_m_min):
        key = "tau_m.layer"  # SGD applies lr_tau to keys named tau_m.*
        SGD(0.0, eta_tau).step({key: consts.tau_m}, {key: F.tau_m_gradient(e, udot)})
        np.maximum(consts.tau_m, tau_m_min, out=consts.tau_m)

    def tau_m(self, consts):
        return consts.tau_m


#: The one FloatArithmetic instance all float models share.
FLOAT = FloatArithmetic()


@implements(proc=GleNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGleNeuronsFloat(AbstractGleNeuronsModel):
    """float64 GLE neurons."""

    arith = FLOAT
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    d_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    e_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    r: np.ndarray = LavaPyType(np.ndarray, float)
    r_prime: np.ndarray = LavaPyType(np.ndarray, float)
    u_prosp: np.ndarray = LavaPyType(np.ndarray, float)
    e: np.ndarray = LavaPyType(np.ndarray, float)
    tau_m: np.ndarray = LavaPyType(np.ndarray, float)
    tau_r: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=GleProjection, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGleProjectionFloat(AbstractGleProjectionModel):
    """float64 plastic GLE projection (forward W p + b, backward W^T e, dW = eta e p^T)."""

    arith = FLOAT
    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    e_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
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

    arith = FLOAT
    x_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    y_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=GleNetworkProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGleNetworkFloat(AbstractGleNetworkModel):
    """float64 fused whole-network model."""

    arith = FLOAT
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)
