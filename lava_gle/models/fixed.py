"""``fixed_pt`` CPU models: Loihi-2-style integer GLE, bit-exact with ``numpy-fixed``.

Every model computes with the integer layer kernels (:class:`lava_gle.numerics.kernels.FixedLayer`)
that the host quantised once (:func:`lava_gle.quantize.quantize_network`) and handed to
the Processes:

- **structural** (``lava-fixed``, ``lava-fixed-exact``): :class:`PyGleNeuronsFixed`,
  :class:`PyGleProjectionFixed` and :class:`PyStreamSourceFixed` run the abstract models
  of :mod:`lava_gle.models.base` (port order, state, recording) around a layer's kernel,
  and under chip timing :class:`PyGleBackwardFixed` the backward arrays (no projections). Ports carry int64 payloads: rates,
  24-bit drives and errors; Vars hold integers.
- **fused** (``lava-fixed-fused``): :class:`PyGleNetworkFixed` steps the host's
  ``numpy-fixed`` engine at batch 1, one GLE step per Lava step.

Both produce the integers of ``numpy-fixed`` in the same ``fixed_point.timing`` exactly
(``tests/models/test_fixed_models.py``).
Saturation is counted in shared counters the host reads (the same keys as
``numpy-fixed``'s ``sat.*`` traces) and warned about (on stderr of the Lava process) the
first time each variable clips.
"""
from __future__ import annotations

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_gle.models.base import (
    AbstractGleBackwardModel, AbstractGleNetworkModel, AbstractGleNeuronsModel,
    AbstractGleProjectionModel, AbstractStreamSourceModel,
)
from lava_gle.processes.gle.process import GleBackwardArray, GleNeurons, GleProjection
from lava_gle.processes.network.process import GleNetworkProcess
from lava_gle.processes.stream.process import StreamSource


@implements(proc=GleNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleNeuronsFixed(AbstractGleNeuronsModel):
    """Integer GLE neurons (24-bit state, 8-bit rate payloads or 24-bit at the output,
    24-bit errors)."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=9)
    d_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    # rates: 8-bit payloads (9 bits with the sign), 24 bits at the output layer
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    e_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    l_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    r: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    r_prime: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    u_prosp: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    e: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)


@implements(proc=GleProjection, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleProjectionFixed(AbstractGleProjectionModel):
    """Integer plastic projection: 8-bit weights with exponent, learning-engine updates."""

    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=9)
    e_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    l_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    eps_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    W: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=9)
    b: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=9)
    eps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)


@implements(proc=GleBackwardArray, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleBackwardFixed(AbstractGleBackwardModel):
    """Integer backward array (chip timing): 8-bit weights, its own learning epoch."""

    r_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=9)
    e_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    l_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    eps_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    B: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=9)
    eps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)


@implements(proc=StreamSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStreamSourceFixed(AbstractStreamSourceModel):
    """Input payloads (signed 8 bit) and targets (output rate format, 24 bit)."""

    x_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=9)
    y_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)


@implements(proc=GleNetworkProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleNetworkFixed(AbstractGleNetworkModel):
    """Fused whole-network model in integers: the host's ``numpy-fixed`` engine at batch 1."""

    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)
