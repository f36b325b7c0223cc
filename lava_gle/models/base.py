"""Abstract ProcessModels of lava-gle and the arithmetic seam they call.

All GLE logic of a model (the order of sends and receives inside a Lava step, state,
resets, recording, learning) lives in the abstract classes here. Every number they
compute comes from one object, the class attribute ``arith`` (a
:class:`StepArithmetic`). A concrete model only adds Lava's decorators, the
``LavaPyType`` declarations of its Vars and Ports, and ``arith``:

    @implements(proc=GleNeurons, protocol=LoihiProtocol)
    @requires(CPU)
    @tag("fixed_pt")
    class PyGleNeuronsFixed(AbstractGleNeuronsModel):
        arith = FixedArithmetic()          # the seam
        s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int64)
        ...

Conventions: Process Vars and parameters hold float values (the network description);
``arith.from_float`` converts them once when a model starts, and the working arrays
(weights in shared memory, streams, state) are in ``arith.dtype``; recorded traces
and parameters read by the host go through ``arith.to_float``.
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np

from lava.magma.core.model.py.model import PyLoihiProcessModel

Array = np.ndarray


class StepArithmetic(Protocol):
    """The seam between the models and one arithmetic (float: ``lava_gle.arithmetic.floating``).

    Shapes: ``n`` neurons, ``m`` presynaptic; all vectors are 1-D (Lava has no batch axis).
    """

    #: dtype of working arrays (weights, streams, state) and of shared parameter arrays.
    dtype: Any

    def from_float(self, x: Array, name: str | None = None) -> Array:
        """Convert float description values (weights, biases, streams) to working values.

        ``name`` says what ``x`` is (``W``, ``b``, ``x``, ``y``) for arithmetics whose
        format depends on it (fixed point); None where it does not matter."""

    def to_float(self, x: Array, name: str | None = None) -> Array:
        """Convert working values back to float64 (recording, parameters read by the host);
        ``name`` is the recorded variable (``u``, ``r``, ..., ``output``) or None."""

    def neuron_constants(self, dt: float, tau_m: Array, tau_r: Array, gamma: float,
                         prospective: bool, phi: str, size: int) -> Any:
        """Per-layer constants for :meth:`neuron_step`."""

    def zero_state(self, n: int) -> Any:
        """The state before step 0, a NeuronState-like tuple of zero vectors [n]."""

    def neuron_step(self, u: Array, v: Array, r_prime: Array, s: Array, d: Array,
                    consts: Any) -> Any:
        """One step of both compartments; returns (u, u_prosp, r, r_prime, v, e, udot)."""

    def output_error(self, r: Array, target: Any, loss: str, beta: float) -> Array:
        """Nudging error from the previous output rate r [n] and the target (vector or class)."""

    def forward_drive(self, w: Array, b: Array, p: Array) -> Array:
        """s = W p + b: w [n, m], b [n], p [m] -> [n]."""

    def backward_error(self, w: Array, e: Array) -> Array:
        """eps = W^T e: w [n, m], e [n] -> [m]."""

    def learn(self, w: Array, b: Array, e: Array, p: Array, eta: float,
              learn_bias: bool) -> None:
        """In place: W += eta e p^T (and b += eta e when ``learn_bias``)."""

    def learn_tau(self, consts: Any, e: Array, udot: Array, eta_tau: float,
                  tau_m_min: float) -> None:
        """In place on ``consts``: tau_m += eta_tau (-e udot), clamped to >= tau_m_min."""

    def tau_m(self, consts: Any) -> Array:
        """The current tau_m [n] of ``consts`` as float64."""


def _is_reset_step(row: int, interval: int) -> bool:
    return interval > 0 and row % interval == 0


class AbstractGleNeuronsModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.gle.process.GleNeurons`.

    Inside Lava step ``k`` (GLE step ``t = k - 1``): send r^-; receive the drive s and
    the error from above (or form the output error from r^- and y_t); step; send e;
    record; learn tau_m.
    """

    arith: ClassVar[StepArithmetic]

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._consts = None

    def _setup(self) -> None:
        p, a = self.proc_params, self.arith
        n = self.u.shape[0]
        self._consts = a.neuron_constants(p["dt"], self.tau_m, self.tau_r, p["gamma"],
                                          p["prospective_errors"], p["phi"], n)
        self._nudging = p["nudging"]
        self._reset = p["reset_interval"]
        self._tau_learning = p["tau_learning"]
        self._tau_view = None
        if self._tau_learning is not None:
            self._tau_view = self._tau_learning.tau_m.attach()
        rec = p["recording"]
        self._rec = None if rec is None else (rec.names, rec.buffer.attach())
        self._zero()

    def _zero(self) -> None:
        st = self.arith.zero_state(self.u.shape[0])
        self.u, self.v, self.r, self.r_prime = st.u, st.v, st.r, st.r_prime
        self.u_prosp, self.e = st.u_prosp, st.e
        self._zeros = st.u

    def run_spk(self) -> None:
        if self._consts is None:
            self._setup()
        a = self.arith
        row = self.time_step - 1
        if _is_reset_step(row, self._reset):
            self._zero()
        r_old = self.r
        self.r_out.send(r_old)
        s = self.s_in.recv()
        nudging = self._nudging
        if nudging is None:
            d = self.d_in.recv()
        elif nudging.has_target:
            y = self.y_in.recv()
            d = a.output_error(r_old, y[0] if nudging.loss == "ce" else y,
                               nudging.loss, nudging.beta)
        else:
            d = self._zeros
        st = a.neuron_step(self.u, self.v, self.r_prime, s, d, self._consts)
        self.e_out.send(st.e)
        self.u, self.v, self.r, self.r_prime = st.u, st.v, st.r, st.r_prime
        self.u_prosp, self.e = st.u_prosp, st.e
        if self._rec is not None:
            names, buf = self._rec
            for i, name in enumerate(names):
                buf[row, i] = a.to_float(r_old if name == "output" else getattr(st, name),
                                         name)
        if self._tau_learning is not None:
            tl = self._tau_learning
            a.learn_tau(self._consts, st.e, st.udot, tl.eta_tau, tl.tau_m_min)
            self._tau_view[...] = a.tau_m(self._consts)


class AbstractGleProjectionModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.gle.process.GleProjection`.

    Inside Lava step ``k``: send eps (computed in step k-1); receive p; send
    s = W p + b; receive e; compute eps = B^T e with W before the update; learn.
    W and b live in the shared arrays given as process parameters.
    """

    arith: ClassVar[StepArithmetic]

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._ready = False

    def _setup(self) -> None:
        p, a = self.proc_params, self.arith
        for var, shared in (("W", p["W_shared"]), ("b", p["b_shared"])):
            start = a.from_float(getattr(self, var), var)
            if shared is not None:
                view = shared.attach()
                view[...] = start
                start = view
            setattr(self, var, start)
        fb = p["feedback"]
        self._back = None if fb is None else a.from_float(fb)
        self._eta = p["eta"]
        self._learning = p["learning"]
        self._learn_bias = p["learn_bias"]
        self._sends_error = p["sends_error"]
        self._reset = p["reset_interval"]
        self._ready = True

    def run_spk(self) -> None:
        if not self._ready:
            self._setup()
        a = self.arith
        if _is_reset_step(self.time_step - 1, self._reset):
            self.eps = np.zeros_like(self.eps)
        if self._sends_error:
            self.eps_out.send(self.eps)
        p = self.p_in.recv()
        self.s_out.send(a.forward_drive(self.W, self.b, p))
        e = self.e_in.recv()
        if self._sends_error:
            self.eps = a.backward_error(self.W if self._back is None else self._back, e)
        if self._learning:
            a.learn(self.W, self.b, e, p, self._eta, self._learn_bias)


class AbstractStreamSourceModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.stream.process.StreamSource`:
    send row ``k - 1`` of the input (and the target) at Lava step ``k``."""

    arith: ClassVar[StepArithmetic]

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._x = None

    def run_spk(self) -> None:
        if self._x is None:
            self._x = self.arith.from_float(self.x, "x")
            self._y = (self.arith.from_float(self.y, "y") if self.proc_params["has_target"]
                       else None)
        row = self.time_step - 1
        self.x_out.send(self._x[row])
        if self._y is not None:
            self.y_out.send(self._y[row])


class _FusedLayer:
    """Working objects of one layer inside the fused model."""

    def __init__(self, arith: StepArithmetic, net, index: int, memory) -> None:
        spec, lrn = net.layers[index], net.learning
        self.consts = arith.neuron_constants(net.dt, spec.tau_m_array(), spec.tau_r_array(),
                                             lrn.gamma, lrn.prospective_errors, spec.phi,
                                             spec.size)
        self.W = memory.W.attach()
        self.W[...] = arith.from_float(net.initial_weights(index))
        self.b = memory.b.attach()
        self.b[...] = arith.from_float(net.initial_biases(index))
        fb = net.feedback_weights(index)
        self.back = self.W if fb is None else arith.from_float(fb)
        self.learn_bias = spec.bias
        self.tau_view = None if memory.tau_m is None else memory.tau_m.attach()
        rec = memory.recording
        self.rec = None if rec is None else (rec.names, rec.buffer.attach())


class AbstractGleNetworkModel(PyLoihiProcessModel):
    """Step logic of :class:`~lava_gle.processes.network.process.GleNetworkProcess`.

    The same step as the structural network, layer by layer, with the same
    arithmetic calls in the same order, so both produce identical traces.
    """

    arith: ClassVar[StepArithmetic]

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._layers = None

    def _setup(self) -> None:
        p, a = self.proc_params, self.arith
        net = p["net"]
        self._net = net
        self._layers = [_FusedLayer(a, net, i, mem) for i, mem in enumerate(p["layers"])]
        self._x = a.from_float(self.x)
        self._has_target = p["has_target"]
        self._y = a.from_float(self.y) if self._has_target else None
        self._reset = p["reset_interval"]
        lrn = net.learning
        self._learning, self._eta = lrn.enabled, lrn.eta
        self._tau = (lrn.eta_tau, net.tau_m_min) if lrn.enabled and lrn.learn_tau else None
        self._zero()

    def _zero(self) -> None:
        a = self.arith
        self._state = [a.zero_state(s) for s in self._net.sizes[1:]]
        self._eps = [np.zeros(s, dtype=a.dtype) for s in self._net.sizes[:-1]]

    def run_spk(self) -> None:
        if self._layers is None:
            self._setup()
        a, lrn = self.arith, self._net.learning
        row = self.time_step - 1
        if _is_reset_step(row, self._reset):
            self._zero()
        old, eps_old = self._state, self._eps
        top = len(old) - 1
        r_top = old[top].r
        if self._has_target:
            y = self._y[row]
            d_top = a.output_error(r_top, y[0] if lrn.loss == "ce" else y, lrn.loss, lrn.beta)
        else:
            d_top = np.zeros_like(r_top)
        new, eps_new = [], list(eps_old)
        for l, layer in enumerate(self._layers):
            p = self._x[row] if l == 0 else old[l - 1].r
            d = d_top if l == top else eps_old[l + 1]
            s = a.forward_drive(layer.W, layer.b, p)
            st = a.neuron_step(old[l].u, old[l].v, old[l].r_prime, s, d, layer.consts)
            if l > 0:
                eps_new[l] = a.backward_error(layer.back, st.e)
            if layer.rec is not None:
                names, buf = layer.rec
                for i, name in enumerate(names):
                    buf[row, i] = a.to_float(r_top if name == "output" else getattr(st, name))
            if self._learning:
                a.learn(layer.W, layer.b, st.e, p, self._eta, layer.learn_bias)
                if self._tau is not None:
                    a.learn_tau(layer.consts, st.e, st.udot, *self._tau)
                    layer.tau_view[...] = a.tau_m(layer.consts)
            new.append(st)
        self._state, self._eps = new, eps_new
