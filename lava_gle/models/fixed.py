"""``fixed_pt`` CPU models: Loihi-2-style integer GLE, bit-exact with ``numpy-fixed``.

Every model computes with :mod:`lava_gle.arithmetic.fixed` and the formats of
:func:`lava_gle.quantize.quantize_network`:

- **structural** (``lava-fixed-structural``): :class:`PyGleNeuronsFixed`,
  :class:`PyGleProjectionFixed` and :class:`PyStreamSourceFixed` reuse the abstract
  models of :mod:`lava_gle.models.base` (port order, state, recording). Each plugs in a
  per-process arithmetic (:class:`NeuronsArithmetic`, :class:`ProjectionArithmetic`,
  :class:`StreamArithmetic`) bound to its layer's formats, which the builder passes as
  the Process parameter ``fixed_point``. Ports carry int64 payloads: rates, 24-bit
  drives and errors.
- **fused** (``lava-fixed``): :class:`PyGleNetworkFixed` steps the whole network with the
  fixed engine's own loop (:class:`lava_gle.fixed_engine.FixedEngine` at batch 1), one GLE
  step per Lava step.

Both produce the integers of ``numpy-fixed`` exactly (``tests/models/test_fixed_models.py``).
Host conventions (the :class:`~lava_gle.models.base.StepArithmetic` seam as
:class:`~lava_gle.mappings.LavaNetwork` uses it): the shared parameter arrays and the
recording buffers hold dequantised float64 values. They are exact, since every value is
an integer times a power of two. Saturation is reported from the models as a
:class:`~lava_gle.quantize.QuantizationWarning` (on stderr of the Lava process) the
first time each variable clips; ``numpy-fixed`` returns the counts.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from lava_gle.arithmetic import fixed as X
from lava_gle.errors import LavaGleError
from lava_gle.fixed_engine import FixedEngine
from lava_gle.models.base import (
    AbstractGleNeuronsModel, AbstractGleProjectionModel, AbstractStreamSourceModel,
)
from lava_gle.processes.gle.process import GleNeurons, GleProjection
from lava_gle.processes.network.process import GleNetworkProcess
from lava_gle.processes.stream.process import StreamSource
from lava_gle.quantize import QuantizationWarning, QuantizedNetwork
from lava_gle.shared import SharedCounters


class FixedHostArithmetic:
    """What the host side of :class:`~lava_gle.mappings.LavaNetwork` needs from a fixed
    model: float64 shared arrays holding dequantised (exact) values."""

    dtype = np.float64

    def from_float(self, x):
        return np.asarray(x, dtype=np.float64)

    def to_float(self, x):
        return x


FIXED_HOST = FixedHostArithmetic()


class _Saturation:
    """Counts clipped values of one layer (or of the streams, ``layer=None``) in the
    shared counters the host reads after the run, and warns the first time a variable
    clips."""

    def __init__(self, where: str, layer: str | None, counters: SharedCounters) -> None:
        self.where, self.layer = where, layer
        self.index, self.counts = counters.attach()
        self.warned: set[str] = set()

    def add(self, var: str, n: int) -> None:
        if n:
            key = var if self.layer is None else f"{var}.{self.layer}"
            self.counts[self.index[key]] += n
            if key not in self.warned:
                self.warned.add(key)
                warnings.warn(f"lava-fixed: {self.where}: fixed-point saturation in {var} "
                              f"(values clipped)", QuantizationWarning, stacklevel=3)


def _formats(proc_params) -> tuple[QuantizedNetwork, int | None, SharedCounters]:
    fp = proc_params["fixed_point"]
    if fp is None:
        raise LavaGleError("fixed_pt GLE models need the network's integer formats: build the "
                           "Processes with LavaNetwork(net, backend='fixed') (or pass "
                           "fixed_point=(quantize_network(net), layer index, counters))")
    return fp


class LavaState(NamedTuple):
    """A fixed neuron state under the names the abstract models use (r = payload p,
    r_prime = gate g, udot = the step's change of u in the potential format, which is
    what integer tau_m learning uses)."""

    u: np.ndarray
    u_prosp: np.ndarray
    r: np.ndarray
    r_prime: np.ndarray
    v: np.ndarray
    e: np.ndarray
    udot: np.ndarray


def _lava_state(st: X.FixedNeuronState, u_old: np.ndarray) -> LavaState:
    return LavaState(st.u, st.u_prosp, st.p, st.g, st.v, st.e, st.u - u_old)


class _Constants:
    """A layer's neuron constants, replaced whenever its tau_m learns."""

    def __init__(self, value: X.FixedNeuronConstants) -> None:
        self.value = value


class NeuronsArithmetic:
    """The seam of one layer's fixed neurons (:class:`~lava_gle.models.base.StepArithmetic`)."""

    dtype = np.int64

    def __init__(self, q: QuantizedNetwork, index: int, counters: SharedCounters) -> None:
        self.q, self.layer, self.index = q, q.layers[index], index
        self.sat = _Saturation(self.layer.name, self.layer.name, counters)
        tl = self.layer.tau
        self.t = None if tl is None else tl.t_init.copy()
        self.steps = 0

    def from_float(self, x, name=None):
        raise LavaGleError("fixed neurons hold no float parameters")

    def to_float(self, x, name=None):
        return x * self.layer.scale("r" if name == "output" else name)

    def neuron_constants(self, dt, tau_m, tau_r, gamma, prospective, phi, size):
        return _Constants(self.layer.consts)

    def zero_state(self, n):
        zero = X.zero_state((n,))
        return _lava_state(zero, zero.u)

    def neuron_step(self, u, v, r_prime, s, d, consts):
        st, counts = X.neuron_step(u, v, r_prime, s, d, consts.value)
        for var, n in zip(X.NEURON_SAT_VARS, counts):
            self.sat.add(var, n)
        return _lava_state(st, u)

    def learn_tau(self, consts, e, udot, eta_tau, tau_m_min):
        tl = self.layer.tau
        self.t, n = X.tau_step(self.t, e, udot, tl,
                               X.tau_dither(self.q.seed, self.index, self.steps, tl))
        self.sat.add("tau", n)
        consts.value = X.tau_constants(consts.value, self.t, tl)
        self.steps += 1

    def tau_m(self, consts):
        return self.t * self.layer.scale("tau_m")

    def output_error(self, r, target, loss, beta):
        d, n = X.output_error(r, target, self.q.beta, self.q.beta_negative)
        self.sat.add("e", n)
        return d


class ProjectionArithmetic:
    """The seam of one layer's fixed projection: integer W and b (kept here; the shared
    float arrays the host reads are rewritten after every learning step), the drive,
    the error sent down and the learning-engine update."""

    dtype = np.float64

    def __init__(self, q: QuantizedNetwork, index: int, counters: SharedCounters) -> None:
        self.q, self.layer, self.index = q, q.layers[index], index
        self.w, self.b = self.layer.w.copy(), self.layer.b.copy()
        self.steps = 0
        self.sat = _Saturation(f"{self.layer.name} projection", self.layer.name, counters)

    def from_float(self, x, name=None):
        if name not in ("W", "b"):
            raise LavaGleError(f"fixed projections convert only W and b, not {name!r} "
                               "(feedback alignment has no fixed-point form)")
        ints = self.w if name == "W" else self.b
        return ints * self.layer.scale(name)

    def to_float(self, x, name=None):
        return x

    def forward_drive(self, w, b, p):
        s, n = X.forward_drive(self.w, self.layer.w_shift, self.b, self.layer.b_shift, p)
        self.sat.add("s", n)
        return s

    def backward_error(self, w, e):
        eps, n = X.backward_error(self.w, e, self.layer.back_shift)
        self.sat.add("eps", n)
        return eps

    def learn(self, w, b, e, p, eta, learn_bias):
        ql, q = self.layer, self.q
        if ql.rule is not None:
            draws = X.learning_draws(q.seed, self.index, self.steps, ql.w.shape,
                                     ql.trace_shift, q.per_synapse_rounding)
            self.w, self.b, counts = X.learn_projection(
                self.w, self.b, p, e, ql.trace_shift, ql.pre_signed, ql.rule,
                ql.bias_rule if learn_bias else None, *draws)
            for var, n in zip(("trace", "W", "b"), counts):
                self.sat.add(var, n)
            w[...] = self.w * ql.scale("W")
            b[...] = self.b * ql.scale("b")
        self.steps += 1


class StreamArithmetic:
    """The seam of the fixed stream source: input and target payloads."""

    dtype = np.int64

    def __init__(self, q: QuantizedNetwork, counters: SharedCounters) -> None:
        self.q = q
        self.sat = _Saturation("streams", None, counters)

    def from_float(self, x, name=None):
        """The whole input (``name="x"``) or target stream as payloads, clipping counted."""
        values, n = self.q.quantize_inputs(x) if name == "x" else self.q.quantize_targets(x)
        self.sat.add("input" if name == "x" else "target", n)
        return values

    def to_float(self, x, name=None):
        raise LavaGleError("the stream source records nothing")


@implements(proc=GleNeurons, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleNeuronsFixed(AbstractGleNeuronsModel):
    """Integer GLE neurons (24-bit state, 8-bit rate payloads or 24-bit at the output,
    24-bit errors)."""

    arith = FIXED_HOST
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    d_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    y_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    # rates: 8-bit payloads (9 bits with the sign), 24 bits at the output layer
    r_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    e_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    r: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    r_prime: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    u_prosp: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    e: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    tau_m: np.ndarray = LavaPyType(np.ndarray, float)
    tau_r: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.arith = NeuronsArithmetic(*_formats(proc_params))


@implements(proc=GleProjection, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleProjectionFixed(AbstractGleProjectionModel):
    """Integer plastic projection: 8-bit weights with exponent, learning-engine updates."""

    arith = FIXED_HOST
    p_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=9)
    e_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    eps_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    W: np.ndarray = LavaPyType(np.ndarray, float)
    b: np.ndarray = LavaPyType(np.ndarray, float)
    eps: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self.arith = ProjectionArithmetic(*_formats(proc_params))


@implements(proc=StreamSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStreamSourceFixed(AbstractStreamSourceModel):
    """Input payloads (signed 8 bit) and targets (output rate format, 24 bit)."""

    arith = FIXED_HOST
    x_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=9)
    y_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int64, precision=24)
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        q, _, counters = _formats(proc_params)
        self.arith = StreamArithmetic(q, counters)


@implements(proc=GleNetworkProcess, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGleNetworkFixed(PyLoihiProcessModel):
    """Fused whole-network model in integers (one GLE step per Lava step)."""

    arith = FIXED_HOST
    x: np.ndarray = LavaPyType(np.ndarray, float)
    y: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._engine: FixedEngine | None = None

    def _setup(self) -> None:
        p = self.proc_params
        net = p["net"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuantizationWarning)  # the host warned already
            eng = FixedEngine(net)
        eng.reset(1)
        self._engine = eng
        self._xq, eng.saturation["input"] = eng.q.quantize_inputs(self.x)
        self._yq = None
        if p["has_target"]:
            self._yq, eng.saturation["target"] = eng.q.quantize_targets(self.y)
        self._counters = None if p["saturation"] is None else p["saturation"].attach()[1]
        self._reset = p["reset_interval"]
        self._params = [(mem.W.attach(), mem.b.attach(),
                         None if mem.tau_m is None else mem.tau_m.attach())
                        for mem in p["layers"]]
        self._recs = [None if mem.recording is None else
                      (mem.recording.names, mem.recording.buffer.attach())
                      for mem in p["layers"]]
        self._write_parameters()
        self._reported: set[str] = set()

    def _write_parameters(self) -> None:
        for (w_view, b_view, tau_view), w, b, tau in zip(
                self._params, self._engine.weights, self._engine.biases, self._engine.tau_m):
            w_view[...] = w
            b_view[...] = b
            if tau_view is not None:
                tau_view[...] = tau

    def run_spk(self) -> None:
        if self._engine is None:
            self._setup()
        eng = self._engine
        row = self.time_step - 1
        if self._reset > 0 and row % self._reset == 0:
            eng.reset(1)
        y = None if self._yq is None else self._yq[row][None]
        out = eng.step(self._xq[row][None], y)
        top = eng.q.layers[-1]
        for ql, st, rec in zip(eng.q.layers, eng.state, self._recs):
            if rec is None:
                continue
            names, buf = rec
            for i, name in enumerate(names):
                if name == "output":
                    buf[row, i] = out[0] * top.scale("r")
                else:
                    buf[row, i] = eng._var(st, name)[0] * ql.scale(name)
        if eng.learning:
            self._write_parameters()
        self._report(eng.saturation)

    def _report(self, counts: dict[str, int]) -> None:
        """Mirror the engine's counts into the shared counters (same names, same order)
        and warn the first time a variable clips."""
        if self._counters is not None:
            self._counters[:] = list(counts.values())
        new = [k for k, n in counts.items() if n and k not in self._reported]
        if new:
            self._reported.update(new)
            warnings.warn(f"lava-fixed: fixed-point saturation in {', '.join(sorted(new))} "
                          f"(values clipped)", QuantizationWarning, stacklevel=2)
