"""Layer kernels: one GLE layer's parameters and its step, in one arithmetic.

A kernel holds what belongs to one layer (the projection into it and its neurons) in
its native dtype: float arrays for :class:`FloatLayer`, integers for
:class:`FixedLayer` (8-bit weights with exponents, 24-bit state; formats from
:func:`lava_gle.quantize.quantize_network`). Its methods are cut where a Lava network
is cut, so the NumPy engine, the structural Lava models (a neurons Process and a
projection Process per layer) and the fused Lava model all call the same code::

    projection half           neurons half
    ---------------           ------------
    drive(p) -> s             step(state, s, d) -> state'
    error_down(e) -> eps      adapt(state'), learning_error(e) -> l
    learn_synapses(l, p, t)   learn_tau(state', state, t)
                              rate(state), var(state, name), decode(name, raw)

The synapses learn from the neurons' learning error ``l``: their error ``e``, or with a
neuron-local error normaliser ``e / RMS(e)``, which the neurons form (``adapt`` keeps
their running mean squares) and send beside ``e``, as a chip's neurons send the
learning engine their post-synaptic trace. With ``learning.epoch_steps`` K > 1 every
caller of a learning epoch runs it through :func:`learn_in_epochs` (the kernel's
:class:`LearningEpoch`), which learns from the summed error and mean payload every K
steps.

Under chip timing (fixed point) the projection half is two arrays in two places:
``drive`` and ``learn_forward`` (W, on the layer's own cores: its neurons Process), and
``error_down`` and ``learn_backward`` (B, a Process of its own); ``learn_synapses`` runs
both epochs where one program holds both arrays.

Parameters live in the kernel's own arrays, updated in place, so :meth:`FloatLayer.bind`
can move them into shared memory that the host of a Lava run reads.

:class:`FloatKernels` and :class:`FixedKernels` hold a network's layers plus what is
not a layer's: the input and target streams (:meth:`encode`) and the output error.
Fixed-point kernels report every clipped value to a saturation sink (``add(key, n)``
with ``key = "<var>.<layer>"``): a :class:`SaturationCounter` in the engine, shared
counters in a Lava model.

Shapes: ``n`` neurons, ``m`` presynaptic, any leading batch axes ``...`` (Lava models
use none).
"""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Callable, Protocol

import numpy as np

from lava_gle.errors import LavaGleError
from lava_gle.numerics import fixed as X
from lava_gle.numerics import floating as F
from lava_gle.numerics import ops
from lava_gle.network import Network, NormaliserState
from lava_gle.quantize import QuantizedNetwork, quantize_network
from lava_gle.quantize.network import epoch_shift
from lava_gle.quantize.rules import LayerLearning

Array = np.ndarray

#: Saturation counters per layer: neuron variables (``du``: the Euler operand clamped to
#: the multiplier, layers with gamma only), drive, error sent down, the dendritic
#: accumulator of the projection into the layer (its sums W p and W^T e), learning error
#: trace, the learning engine's accumulator (``lacc``: its 16-bit products and sums,
#: :func:`~lava_gle.numerics.fixed.accumulate`), weights and biases at the 8-bit limit,
#: learned tau_m at the 24-bit limit; plus input and target payloads. Layers with weight
#: tags also count ``tag`` (their tags at the limit; the weights' counts are then those of
#: the carries).
SAT_VARS = X.NEURON_SAT_VARS + ("s", "eps", "acc", "trace", "lacc", "W", "b", "tau")


def saturation_keys(q: QuantizedNetwork) -> tuple[str, ...]:
    """Names of the saturation counters of a fixed-point run: ``<var>.<layer>`` for every
    variable of :data:`SAT_VARS` and layer (``du`` only where the neuron step clamps it:
    layers with gamma), then ``input`` and ``target``; with chip timing also ``B.<layer>``
    (the backward array at the 8-bit limit) and ``lacc_B.<layer>`` (its learning
    accumulator) for every layer above the first; with weight
    tags ``tag.<layer>`` (the layer's tags at their limit); with gains ``q.<layer>`` (the
    gained payload and the gained error from above at their limits); with learning epochs
    of more than one step ``esum.<layer>`` (the epoch's summed learning error at the
    24-bit limit)."""
    keys = tuple(f"{v}.{ql.name}" for ql in q.layers for v in SAT_VARS + ("tag", "q")
                 if (v != "du" or ql.consts.du_max is not None) and (v != "tag" or ql.tag_bits)
                 and (v != "q" or (ql.norm is not None and ql.norm.gain_shift is not None)))
    if q.chip_timing:
        keys += tuple(f"{v}.{ql.name}" for ql in q.layers[1:] for v in ("B", "lacc_B"))
    if q.epoch_shift:
        keys += tuple(f"esum.{ql.name}" for ql in q.layers)
    return keys + ("input", "target")


class SaturationSink(Protocol):
    """Where a fixed-point kernel reports clipped values."""

    def add(self, key: str, n: int) -> None:
        """Count ``n`` more clipped values of ``key`` (``<var>.<layer>``, input, target)."""


class SaturationCounter:
    """A :class:`SaturationSink` that keeps the counts in :attr:`counts` (key order of
    :func:`saturation_keys`)."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.counts: dict[str, int] = dict.fromkeys(keys, 0)

    def add(self, key: str, n: int) -> None:
        if n:
            self.counts[key] += n


class LearningEpoch:
    """The sums of a learning epoch of ``steps`` steps (``learning.epoch_steps`` > 1): the
    learning error summed over the epoch by the neurons (``add_error(sum, l)``, which may
    saturate) and the presynaptic payload summed by the neurons that send it, then
    averaged (``mean_payload(sum)``) at the epoch's last step. Every caller of a learning
    epoch runs it through :func:`learn_in_epochs`; every Process that learns an
    array of the layer holds its own copy (the same pairs give the same sums)."""

    def __init__(self, steps: int, add_error: Callable[[Array, Array], Array],
                 mean_payload: Callable[[Array], Array]) -> None:
        self.steps, self._add, self._mean = steps, add_error, mean_payload
        self.reset()

    def reset(self) -> None:
        """Start a new epoch (a reset of the state drops the begun one)."""
        self.count, self.l, self.p = 0, None, None

    def pair(self, l: Array, p: Array) -> tuple[Array, Array] | None:
        """Add step's learning error ``l`` [..., n] and payload ``p`` [..., m]; at the
        epoch's last step return (summed error, mean payload) and start the next, before
        it None."""
        if self.count == 0:
            self.l, self.p = np.array(l), np.array(p)
        else:
            self.l, self.p = self._add(self.l, l), self.p + p
        self.count += 1
        if self.count < self.steps:
            return None
        pair = self.l, self._mean(self.p)
        self.reset()
        return pair

    def state(self, prefix: str) -> dict[str, Array]:
        """The begun epoch as named copies (``<prefix>count``, and after its first step
        ``<prefix>l``, ``<prefix>p``)."""
        out = {f"{prefix}count": np.array(self.count)}
        if self.count:
            out[f"{prefix}l"], out[f"{prefix}p"] = self.l.copy(), self.p.copy()
        return out

    def load(self, arrays: dict[str, Array], prefix: str) -> None:
        """Put :meth:`state` back."""
        self.reset()
        self.count = int(arrays[f"{prefix}count"])
        if self.count:
            self.l, self.p = arrays[f"{prefix}l"].copy(), arrays[f"{prefix}p"].copy()


def check_no_begun_epoch(layers: list, steps: int) -> None:
    """Refuse to change the learning epochs' length to ``steps`` while a layer of
    ``layers`` (kernels) holds the sums of a begun one, which the change would drop."""
    k = next((k for k in layers if k.epoch is not None and k.epoch.count), None)
    if k is not None:
        raise LavaGleError(
            f"learning epochs of {steps} steps: layer {k.name!r} is {k.epoch.count} steps "
            f"into a learning epoch of {k.epoch.steps}, whose sums the change would drop; "
            "change the length where an epoch has ended (after a multiple of its steps)")


def epoch_pair(epoch: LearningEpoch | None, l: Array, p: Array
               ) -> tuple[Array, Array] | None:
    """The pair a learning epoch learns from after this step (:class:`LearningEpoch`):
    ``(l, p)`` itself where every step is an epoch (``epoch`` None)."""
    return (l, p) if epoch is None else epoch.pair(l, p)


def learn_in_epochs(epoch: LearningEpoch | None, learn: Callable[[Array, Array, int], None],
                    l: Array, p: Array, t: int) -> None:
    """Pass step ``t``'s pair through the learning epoch and ``learn(l, p, t)`` (a kernel's
    ``learn_synapses``, ``learn_forward`` or ``learn_backward``) on the pair of
    :func:`epoch_pair`, at each epoch's last step (every step without epochs)."""
    pair = epoch_pair(epoch, l, p)
    if pair is not None:
        learn(*pair, t)


# -- float ---------------------------------------------------------------------------

class FloatLayer:
    """Layer ``index`` of ``net`` in floating point (float64 or float32).

    Attributes
    ----------
    W : ndarray [n, m], b : ndarray [n]
        Weights and biases, updated in place while learning.
    tau_m : ndarray [n]
        Membrane time constants, the array inside :attr:`consts` (learned in place).
    consts : NeuronConstants
    gain : ndarray [n] or None
        With ``gain_decay``: the neurons' gains ``g`` (they send ``g r``), from
        :attr:`gain_ms`; None: no gain.
    error_scale : ndarray [n] or None
        With ``error_norm_decay``: the factor ``n`` of the error the projection learns
        from, from :attr:`error_ms`; None: the rule learns from ``e``.
    gain_ms, error_ms : ndarray [n] or None
        The running mean squares of r and e behind them (updated by :meth:`adapt` on
        learning steps); ``norm_steps`` (int64 []): how many updates they have had.
        ``gain_ms`` starts at 1 (g = 1) and counts that as its first sample
        (:data:`~lava_gle.numerics.floating.GAIN_PRIOR`).
    """

    arithmetic = "float"

    def __init__(self, net: Network, index: int, dtype=np.float64) -> None:
        spec, lrn = net.layers[index], net.learning
        self.name, self.index, self.size = spec.name, index, spec.size
        self.dtype = np.dtype(dtype).type
        self.W = net.initial_weights(index).astype(self.dtype)
        self.b = net.initial_biases(index).astype(self.dtype)
        fb = net.feedback_weights(index)
        self.back = None if fb is None else fb.astype(self.dtype)
        self.consts = F.NeuronConstants.build(net.dt, spec.tau_m, spec.tau_r, lrn.gamma,
                                              lrn.prospective_errors, spec.phi, spec.size,
                                              self.dtype, spec.error_bound)
        #: whether W (and b, with a bias) learn: not where the layer's ``eta_scale`` is 0
        self.learns_synapses = spec.eta_scale > 0
        self.learn_bias = spec.bias and self.learns_synapses
        self.eta_scale = spec.eta_scale
        self.eta, self.eta_tau = lrn.eta * spec.eta_scale, lrn.eta_tau
        self.learns_tau = lrn.enabled and lrn.learn_tau
        #: whether run results carry ``tau_m.L`` (whenever the description asks to learn it)
        self.reports_tau_m = lrn.learn_tau
        self.tau_m_min = net.tau_m_min
        self.gain_decay, self.norm_decay = spec.gain_decay, spec.error_norm_decay
        self.gain_max = spec.gain_max
        self.gain_ms = (None if self.gain_decay is None else
                        np.full(spec.size, F.GAIN_PRIOR, self.dtype))
        self.error_ms = None if self.norm_decay is None else np.zeros(spec.size, self.dtype)
        self.norm_steps = np.zeros((), np.int64)
        self._normalise()
        if spec.normaliser_state is not None:  # where a description left them
            self.load(spec.normaliser_state.arrays())
        #: the learning epoch's sums (None: GLE's rule every step)
        self.epoch = self.learning_epoch(lrn.epoch_steps)

    def learning_epoch(self, steps: int) -> LearningEpoch | None:
        """Empty sums of learning epochs of ``steps`` steps (None for 1: GLE's rule every
        step)."""
        return None if steps == 1 else LearningEpoch(steps, np.add, lambda p: p / steps)

    @property
    def tau_m(self) -> Array:
        return self.consts.tau_m

    def parameters(self) -> dict[str, Array]:
        """The learnable and adaptive arrays by kind (``W``, ``b``, ``tau_m``; with
        normalisers also ``gain_ms``, ``error_ms`` and ``norm_steps``): the kernel's own."""
        out = {"W": self.W, "b": self.b, "tau_m": self.consts.tau_m}
        for kind in ("gain_ms", "error_ms"):
            if getattr(self, kind) is not None:
                out[kind] = getattr(self, kind)
        if self.gain_ms is not None or self.error_ms is not None:
            out["norm_steps"] = self.norm_steps
        return out

    def load(self, params: dict[str, Array]) -> None:
        """Set parameters by kind (any subset of :meth:`parameters`' kinds) in place."""
        mine = self.parameters()
        for kind, values in params.items():
            mine[kind][...] = values
        self._normalise()

    def normaliser_state(self) -> NormaliserState | None:
        """Where the normalisers stand (a description's ``normaliser_state``, float64
        copies); None without normalisers or before their first update."""
        return _state(self.norm_steps, self.gain_ms, self.error_ms)

    def adapt(self, new: F.NeuronState) -> None:
        """One learning step of the neuron-local normalisers: the running mean squares of
        the new rate and error, then :attr:`gain` and :attr:`error_scale` from them."""
        if self.gain_ms is None and self.error_ms is None:
            return
        self.norm_steps += 1
        steps = int(self.norm_steps)
        if self.gain_ms is not None:  # the prior was update 1
            F.update_mean_square(self.gain_ms, new.r,
                                 F.mean_square_rate(steps + 1, self.gain_decay))
        if self.error_ms is not None:
            F.update_mean_square(self.error_ms, new.e, F.mean_square_rate(steps, self.norm_decay))
        self._normalise()

    def _normalise(self) -> None:
        steps = int(self.norm_steps)
        self.gain = None if self.gain_ms is None else F.normaliser(
            self.gain_ms, steps, self.gain_max)
        self.error_scale = None if self.error_ms is None else F.normaliser(
            self.error_ms, steps, F.NORM_MAX)

    def gains_at_cap(self) -> int | None:
        """How many of the layer's gains stand at their cap ``gain_max`` (None without
        gains): neurons whose rate is all but silent, whose rounding and noise the gain
        multiplies most."""
        if self.gain is None:
            return None  # the cap as the gains hold it (float32 too)
        return int(np.count_nonzero(self.gain >= self.gain.dtype.type(self.gain_max)))

    def zero_state(self, batch: tuple[int, ...]) -> F.NeuronState:
        return F.zero_state(batch + (self.size,), self.dtype)

    def rate(self, st: F.NeuronState) -> Array:
        """What the layer sends up: ``r``, or ``g r`` with a gain."""
        return st.r if self.gain is None else st.r * self.gain

    def drive(self, p: Array) -> Array:
        return F.forward_drive(self.W, self.b, p)

    def step(self, st: F.NeuronState, s: Array, d: Array) -> F.NeuronState:
        """One neuron step; with a gain the error from above is ``g d`` (the error of
        the rate ``r`` behind the payload ``g r``, g held constant)."""
        if self.gain is not None:
            d = d * self.gain
        return F.neuron_step(st.u, st.v, st.r_prime, s, d, self.consts)

    def error_down(self, e: Array) -> Array:
        """The error sent to the layer below, ``B^T e`` (B = W, or the feedback weights)."""
        return F.backward_error(self.W if self.back is None else self.back, e)

    def bind(self, **arrays: Array | None) -> None:
        """Keep the given parameters (keywords: the kinds of :meth:`parameters`; None or
        a kind this layer lacks is skipped) in these arrays from now on (e.g. shared
        memory), starting from their current values."""
        def keep(kind: str, array: Array) -> None:
            if kind == "tau_m":  # the frozen constants hold it
                self.consts = replace(self.consts, tau_m=array)
            else:
                setattr(self, kind, array)
        _bind(self.parameters(), arrays, keep)

    def gradients(self, new: F.NeuronState, p: Array) -> dict[str, Array]:
        """Local signals of one step by kind (``W`` and ``b`` with a bias where they learn,
        ``tau_m`` when it learns), batch means; an optimiser moves each parameter along
        ``+g``."""
        out = {}
        if self.learns_synapses:
            out["W"], g_b = F.local_gradients(new.e, p)
            if self.learn_bias:
                out["b"] = g_b
        if self.learns_tau:
            out["tau_m"] = F.tau_m_gradient(new.e, new.udot)
        return out

    def learning_error(self, e: Array) -> Array:
        """The error the projection into the layer learns from: ``e``, or ``e`` times
        :attr:`error_scale` with an error normaliser."""
        return e if self.error_scale is None else e * self.error_scale

    def learn_synapses(self, l: Array, p: Array, t: int) -> None:
        """GLE's rule: ``W += eta mean_b(l p^T)``, ``b += eta mean_b(l)`` (``eta``: the
        network's rate times the layer's ``eta_scale``; ``l``: :meth:`learning_error`); none
        where ``eta_scale`` is 0."""
        if not self.learns_synapses:
            return
        g_w, g_b = F.local_gradients(l, p)
        self.W += self.eta * g_w
        if self.learn_bias:
            self.b += self.eta * g_b

    def learn_tau(self, new: F.NeuronState, old: F.NeuronState, t: int) -> None:
        """``tau_m += eta_tau mean_b(-e du/dt)``, clamped to ``>= tau_m_min``."""
        if self.learns_tau:
            tau = self.consts.tau_m  # in place: the frozen constants hold this array
            tau += self.eta_tau * F.tau_m_gradient(new.e, new.udot)
            self.clamp_tau()

    def clamp_tau(self) -> None:
        np.maximum(self.consts.tau_m, self.tau_m_min, out=self.consts.tau_m)

    def var(self, st: F.NeuronState, name: str) -> Array:
        return getattr(st, name)

    def decode(self, name: str, raw: Array) -> Array:
        """Float values of a recorded variable or parameter: ``raw`` itself."""
        return raw


class FloatKernels:
    """A network's :class:`FloatLayer` list, the streams and the output error."""

    arithmetic = "float"
    saturation = None

    def __init__(self, net: Network, dtype=np.float64) -> None:
        self.dtype = np.dtype(dtype).type
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        self.net = net
        self.layers = [FloatLayer(net, i, self.dtype) for i in range(len(net.layers))]
        self.record_dtype = self.dtype

    def encode(self, x: Array, y: Array | None) -> tuple[Array, Array | None]:
        """Checked float64 streams in the working dtype (class indices stay integers)."""
        x = x.astype(self.dtype, copy=False)
        if y is not None and y.dtype.kind == "f":
            y = y.astype(self.dtype, copy=False)
        return x, y

    def output_error(self, r: Array, y: Array | None) -> Array:
        """Nudging error from the previous output rate r [..., out] and the target y."""
        if y is None:
            return np.zeros_like(r)
        lrn = self.net.learning
        return F.output_error(r, y, lrn.loss, lrn.beta).astype(self.dtype, copy=False)

    def decode_output(self, raw: Array) -> Array:
        return raw

    def report_to(self, sink: SaturationSink) -> None:
        """Float kernels clip nothing: nothing to report."""

    def describe(self, net: Network) -> Network:
        """``net`` (these kernels' network with their current parameters) with the
        normalisers' state as it stands."""
        return with_normaliser_states(net, self)

    def set_eta(self, eta: float) -> None:
        """Rate of GLE's own rule from now on (``W += eta e p^T``, times each layer's
        ``eta_scale``), e.g. an epoch schedule."""
        for k in self.layers:
            k.eta = eta * k.eta_scale

    def set_epoch_steps(self, steps: int) -> None:
        """Learning epochs of ``steps`` steps from now on (:func:`check_no_begun_epoch`)."""
        check_no_begun_epoch(self.layers, steps)
        self.net = self.net.with_learning(epoch_steps=steps)
        for k in self.layers:
            k.epoch = k.learning_epoch(steps)

    def learn(self, new: list, old: list, pres: list[Array], t: int, optimizer=None) -> None:
        """One step of plasticity: the neuron-local normalisers (:meth:`FloatLayer.adapt`),
        then GLE's own rule (once per learning epoch, :func:`learn_in_epochs`), or
        ``optimizer.step(params, grads)`` on the local signals (keys
        ``W.L``, ``b.L``, ``tau_m.L``), tau_m then clamped."""
        for k, st in zip(self.layers, new):
            k.adapt(st)
        if optimizer is None:
            for k, st, st_old, p in zip(self.layers, new, old, pres):
                learn_in_epochs(k.epoch, k.learn_synapses, k.learning_error(st.e), p, t)
                k.learn_tau(st, st_old, t)
            return
        params, grads = {}, {}
        for k, st, p in zip(self.layers, new, pres):
            mine = k.parameters()
            for kind, g in k.gradients(st, p).items():
                params[f"{kind}.{k.name}"], grads[f"{kind}.{k.name}"] = mine[kind], g
        optimizer.step(params, grads)
        for k in self.layers:
            if k.learns_tau:
                k.clamp_tau()


def _bind(mine: dict[str, Array], arrays: dict[str, Array | None],
          keep: Callable[[str, Array], None]) -> None:
    """A kernel's ``bind``: copy each parameter's current value (``mine``, by kind) into
    the given array and ``keep(kind, array)`` it as the parameter from now on; None or a
    kind not in ``mine`` is skipped."""
    for kind, array in arrays.items():
        if array is not None and kind in mine:
            array[...] = mine[kind]
            keep(kind, array)


def with_normaliser_states(net: Network, kernels) -> Network:
    """``net`` with each layer's ``normaliser_state`` as ``kernels`` (float or fixed) have
    it now (None without normalisers or before their first update)."""
    return replace(net, layers=tuple(replace(layer, normaliser_state=k.normaliser_state())
                                     for layer, k in zip(net.layers, kernels.layers)))


def _state(steps: Array, gain_ms: Array | None, error_ms: Array | None
           ) -> NormaliserState | None:
    """A :class:`~lava_gle.network.NormaliserState` of float64 copies; None before the
    first update or without normalisers."""
    if int(steps) == 0 or (gain_ms is None and error_ms is None):
        return None
    return NormaliserState(int(steps), *(None if ms is None else np.array(ms, np.float64)
                                         for ms in (gain_ms, error_ms)))


# -- fixed point -----------------------------------------------------------------------

class FixedLayer:
    """Layer ``index`` of a :class:`QuantizedNetwork` in Loihi-2-style integers.

    Attributes
    ----------
    W : int64 [n, m], b : int64 [n]
        8-bit weights and biases (sign + 8 bits), updated by the learning-engine rule.
    B : int64 [n, m] or None
        Chip timing (``q.chip_timing``), layers above the first: the backward array that
        carries the error down, held in W's orientation (the chip's array is ``B^T``
        [m, n], on the lower layer's cores). Starts equal to W and learns with its own
        epoch (:meth:`learn_backward`). None under exact timing (the error goes down
        through W).
    drift : int64 [3]
        Transpose drift of ``B`` against ``W`` over the run, in weight LSBs: the largest
        ``|B - W|`` seen after any learning step, the sum over steps of ``sum (B - W)**2``
        and the number of synapse-steps summed (:meth:`transpose_drift`).
    tag_W, tag_b, tag_B : int64 arrays shaped as W, b, B, or None
        With ``fixed_point.weight_tag_bits``: the synaptic tags of W, b and (chip timing) B,
        their low-order ``ql.tag_bits`` bits while learning
        (:func:`~lava_gle.numerics.fixed.carry_tags`); None without tags.
    t : int64 [n] or None
        Integer tau_m (``tau_m * 2**tau_bits``) where it learns, else None.
    consts : FixedNeuronConstants
        Re-derived from :attr:`t` whenever it changes.
    sat : SaturationSink
    """

    arithmetic = "fixed"

    def __init__(self, q: QuantizedNetwork, index: int, sat: SaturationSink) -> None:
        ql = q.layers[index]
        self.q, self.ql, self.index = q, ql, index
        self.name, self.size = ql.name, ql.size
        self.W, self.b = ql.w.copy(), ql.b.copy()
        self.B = ql.w.copy() if q.chip_timing and index > 0 else None
        self.drift = np.zeros(3, np.int64)
        self._drift_rows = np.zeros(ql.size, np.int64)  # sum_j (B - W)**2 per row, now
        self._drift_sq = 0  # their sum
        self._active = np.zeros(ql.size, np.bool_)  # rows of the backward epoch (scratch)
        tags = ql.tag_bits > 0
        self.tag_W = np.zeros_like(self.W) if tags else None
        self.tag_b = np.zeros_like(self.b) if tags else None
        self.tag_B = np.zeros_like(self.W) if tags and self.B is not None else None
        self.t = None if ql.tau is None else ql.tau.t_init.copy()
        self.reports_tau_m = self.t is not None
        self._tau_m_fixed = q.net.layers[index].tau_m_array()
        self.consts = ql.consts
        self.sat = sat
        self._keys = {v: f"{v}.{ql.name}"
                      for v in SAT_VARS + ("B", "lacc_B", "tag", "q", "esum")}
        self._acc_max = X.acc_limit(q.acc_bits)
        self.norm = ql.norm
        has = (None, None) if self.norm is None else (self.norm.gain_shift, self.norm.error_shift)
        # the prior: r = 1 in the layer's 24-bit rate format (g = 1), update 1
        self.gain_ms = (None if has[0] is None else
                        np.full(ql.size, 1 << (2 * ql.rate_bits), np.int64))
        self.error_ms = None if has[1] is None else np.zeros(ql.size, np.int64)
        self.norm_steps = np.zeros((), np.int64)
        self._normalise()
        if ql.norm_state is not None:  # where a description left them
            self.load(ql.norm_state)
        #: the learning epoch's sums (None: an epoch every step)
        self.epoch = self.learning_epoch(q.epoch_shift)

    def learning_epoch(self, shift: int) -> LearningEpoch | None:
        """Empty sums of learning epochs of ``2**shift`` steps (None for 0: an epoch every
        step): the error summed in the neurons' 24-bit state, the payloads' mean by a
        rounding shift."""
        return None if shift == 0 else LearningEpoch(
            1 << shift, self._add_error, lambda p: X.shift_round(p, shift))

    def _add_error(self, total: Array, l: Array) -> Array:
        """The neurons' epoch sum of learning errors plus this step's, saturated to 24
        bits (counted as ``esum``)."""
        total, n = X.saturate_state(total + l)
        self._count("esum", n)
        return total

    @property
    def tau_m(self) -> Array:
        """Membrane time constants [n] in the unit of dt (from T where tau_m learns)."""
        return self._tau_m_fixed if self.t is None else self.t * self.ql.scale("tau_m")

    def parameters(self) -> dict[str, Array]:
        """The learnable integer arrays by kind (``W``, ``b``, ``B`` under chip timing,
        ``tag_W``, ``tag_b`` and ``tag_B`` with weight tags, ``tau_m`` = T where it
        learns, and with normalisers ``gain_ms``, ``error_ms``, ``norm_steps``): the
        kernel's own."""
        out = {"W": self.W, "b": self.b}
        for kind in ("B", "tag_W", "tag_b", "tag_B"):
            if getattr(self, kind) is not None:
                out[kind] = getattr(self, kind)
        if self.t is not None:
            out["tau_m"] = self.t
        for kind in ("gain_ms", "error_ms"):
            if getattr(self, kind) is not None:
                out[kind] = getattr(self, kind)
        if self.norm is not None:
            out["norm_steps"] = self.norm_steps
        return out

    def load(self, params: dict[str, Array]) -> None:
        """Set parameters by kind (those of :meth:`parameters`; any subset) in place,
        and re-derive the Euler factors from T."""
        mine = self.parameters()
        for kind, values in params.items():
            mine[kind][...] = values
        if self.B is not None:
            self._drift_rows = np.sum((self.B - self.W) ** 2, axis=-1)
            self._drift_sq = int(self._drift_rows.sum())
        if self.t is not None:
            self.consts = X.tau_constants(self.ql.consts, self.t, self.ql.tau)
        self._normalise()

    def _count(self, var: str, n: int) -> None:
        if n:
            self.sat.add(self._keys[var], n)

    def gains_at_cap(self) -> int | None:
        """How many of the layer's integer gains ``gamma`` stand at their cap (None
        without gains), as :meth:`FloatLayer.gains_at_cap`."""
        if self.gamma is None:
            return None
        return int(np.count_nonzero(self.gamma >= self.norm.gain_max))

    def zero_state(self, batch: tuple[int, ...]) -> X.FixedNeuronState:
        return X.zero_state(batch + (self.size,))

    def rate(self, st: X.FixedNeuronState) -> Array:
        """The payload the layer sends up: ``p``, or with gains ``q`` (format ``q_bits +
        wide_bits``)."""
        if self.gamma is None:
            return st.p
        q, n = ops.gain_payload(st.p, self.gamma, self.norm.payload_shift,
                                self.ql.rate_signed, self.norm.wide_bits)
        self._count("q", n)
        return q

    def normaliser_state(self) -> NormaliserState | None:
        """Where the normalisers stand, in float units (a description's
        ``normaliser_state``; exact: the integers times powers of two); None without
        normalisers or before their first update."""
        r2, e2 = self.ql.scale("r") ** 2, self.ql.scale("e") ** 2  # the LSBs squared
        return _state(self.norm_steps,
                      None if self.gain_ms is None else self.gain_ms * r2,
                      None if self.error_ms is None else self.error_ms * e2)

    def adapt(self, new: X.FixedNeuronState) -> None:
        """One learning step of the normalisers: the running mean squares of the new
        payload and error (shift schedule :func:`~lava_gle.numerics.fixed.mean_square_shift`),
        then the integer gains and error normalisers from them."""
        if self.norm is None:
            return
        self.norm_steps += 1
        steps, nf = int(self.norm_steps), self.norm
        if self.gain_ms is not None:
            ops.update_mean_square(self.gain_ms, new.p,
                                   X.mean_square_shift(steps + 1, nf.gain_shift))
        if self.error_ms is not None:
            ops.update_mean_square(self.error_ms, new.e,
                                   X.mean_square_shift(steps, nf.error_shift))
        self._normalise()

    def _normalise(self) -> None:
        """``gamma`` and ``nu`` (integer factors, None without) and :attr:`gain` (float g,
        None without) from the running mean squares; before the first update g = n = 1."""
        nf, first = self.norm, int(self.norm_steps) == 0
        self.gamma = self.nu = self.gain = None
        if self.gain_ms is not None:
            # the prior (r = 1) gives gamma = 2**GAIN_FRAC exactly before the first update
            self.gamma = ops.inverse_rms(self.gain_ms, nf.gain_k, nf.gain_max)
            self.gain = self.gamma * 2.0 ** -X.GAIN_FRAC
        if self.error_ms is not None:
            self.nu = ops.error_normaliser(None if first else self.error_ms, nf.norm_shift,
                                           nf.norm_max)

    def drive(self, p: Array) -> Array:
        ql = self.ql
        s, n, n_acc = ops.forward_drive(self.W, ql.w_shift, self.b, ql.b_shift, p,
                                        self._acc_max)
        self._count("s", n)
        self._count("acc", n_acc)
        return s

    def step(self, st: X.FixedNeuronState, s: Array, d: Array) -> X.FixedNeuronState:
        if self.gamma is not None:  # the error of r behind the payload g r
            d, n = ops.gain_error(d, self.gamma, X.GAIN_FRAC)
            self._count("q", n)
        new, counts = ops.neuron_step(st.u, st.v, st.g, s, d, self.consts)
        for var, n in zip(X.NEURON_SAT_VARS, counts):
            self._count(var, n)
        return new

    def error_down(self, e: Array) -> Array:
        """The error sent to the layer below, ``W^T e``, or ``B^T e`` under chip timing
        (the backward array as it stands before this step's learning epochs)."""
        eps, n, n_acc = ops.backward_error(self.W if self.B is None else self.B, e,
                                           self.ql.back_shift, self._acc_max)
        self._count("eps", n)
        self._count("acc", n_acc)
        return eps

    def bind(self, watch_W: Array | None = None, **arrays: Array | None) -> None:
        """Keep the given parameters (keywords: the kinds of :meth:`parameters`, with
        ``tau_m`` the integer T, and the ``drift`` figures under chip timing; None or a
        kind this layer lacks is skipped) in these arrays from now on, starting from their
        current values. ``watch_W``: read W from this array from now on without writing it
        (it holds the same values; another Process learns it): the Process of a backward
        array watches its forward array so (:meth:`learn_backward`) can track the drift."""
        if watch_W is not None:
            self.W = watch_W
        _bind(dict(self.parameters(), drift=self.drift), arrays,
              lambda kind, array: setattr(self, {"tau_m": "t"}.get(kind, kind), array))

    def learning_error(self, e: Array) -> Array:
        """The error the arrays into the layer learn from: ``e``, or with an error
        normaliser ``round(nu e)`` (``NORM_FRAC`` fraction bits,
        :func:`~lava_gle.numerics.fixed.normalised_error`)."""
        return e if self.nu is None else ops.normalised_error(e, self.nu)

    def learn_synapses(self, l: Array, p: Array, t: int) -> None:
        """Every learning epoch of step ``t``'s pair (learning errors ``l`` [..., n] of
        :meth:`learning_error`, payloads ``p`` [..., m]): the forward array's
        (:meth:`learn_forward`) and, under chip timing, the backward array's
        (:meth:`learn_backward`). The engine and the fused model call this; the structural
        model calls the two halves in the Processes that hold the arrays."""
        self.learn_forward(l, p, t)
        if self.B is not None:
            self.learn_backward(l, p, t)

    def learn_forward(self, l: Array, p: Array, t: int) -> None:
        """One learning-engine epoch of the forward array (W, b) at step ``t`` for the
        learning errors ``l`` (:meth:`learning_error`); its random numbers come from the
        counter hash of ``(seed, layer, t)``: :func:`~lava_gle.numerics.fixed.learn_projection`."""
        ql, q = self.ql, self.q
        if ql.rule is None:
            return
        W, b = self._carry("W", "tag_W"), self._carry("b", "tag_b")
        p = X.learning_payload(p, ql.pre_wide_bits)
        n_trace, n_w, n_b, n_acc = ops.learn_projection(
            W, b, p, l, ql.trace_shift, ql.pre_signed, ql.rule, ql.bias_rule, q.seed,
            self.index, t, q.per_synapse_rounding, ql.pre_trace_coarsening,
            trace_mant=ql.trace_mant)
        self._count("trace", n_trace)
        self._count("lacc", n_acc)
        self._count("W" if self.tag_W is None else "tag", n_w)
        self._count("b" if self.tag_b is None else "tag", n_b)

    def _carry(self, kind: str, tag: str) -> Array:
        """The array a learning epoch updates for parameter ``kind`` (``W``, ``b``, ``B``):
        itself, or with weight tags its tag ``tag``, after the tag's carry into it
        (:func:`~lava_gle.numerics.fixed.carry_tags`: every epoch, every synapse, first)."""
        tags = getattr(self, tag)
        if tags is None:
            return getattr(self, kind)
        self._count(kind, ops.carry_tags(getattr(self, kind), tags, self.ql.tag_bits))
        return tags

    def learn_backward(self, l: Array, p: Array, t: int) -> None:
        """The backward array's learning epoch for the forward pair of step ``t`` (chip
        timing; ``l`` [..., n], ``p`` [..., m] as for :meth:`learn_forward`), then the
        transpose drift against W, which must already hold the forward epoch of step ``t``.

        On the chip it runs at step ``t + 1`` on the lower layer's cores: the error payload
        sent at step ``t`` (``e_q(t)``, the forward epoch's own trace, drawn again here)
        arrives then and is paired with the lower neurons' delayed rate trace, their payload
        of step ``t - 1`` (the ``p`` the forward epoch of step ``t`` paired). Nothing reads
        B between that epoch and this call (the error of step ``t + 1`` is summed before
        it, :meth:`error_down`), so computing it at step ``t`` gives the chip's integers.
        Rounding numbers: its own stream (``fixed.BACKWARD_STREAM + layer``) at chip step
        ``t + 1``, or the forward array's (:func:`~lava_gle.numerics.fixed.rounding_draws`)
        when ``mirrored``. The accumulator is the forward one on the transposed signals
        (``tests/test_microcode.py``): :func:`~lava_gle.numerics.fixed.learn_projection`
        (``ops``: compiled or reference) without biases, with these rounding numbers; its
        error-trace clips are the forward epoch's, counted there."""
        q, ql = self.q, self.ql
        if ql.rule is None:
            return
        rounding = ((2 * self.index, t) if q.mirrored_backward_rounding
                    else (X.BACKWARD_STREAM + self.index, t + 1))
        p = X.learning_payload(p, ql.pre_wide_bits)
        _, n, _, n_acc = ops.learn_projection(
            self._carry("B", "tag_B"), None, p, l, ql.trace_shift, ql.pre_signed, ql.rule,
            None, q.seed, self.index, t, q.per_synapse_rounding, ql.pre_trace_coarsening,
            rounding, self._active, ql.trace_mant)
        self._count("B" if self.tag_B is None else "tag", n)
        self._count("lacc_B", n_acc)
        # with tags a carry may change any row, learning or not
        self._track_drift(np.arange(ql.size) if self.tag_B is not None
                          else np.flatnonzero(self._active))

    def _track_drift(self, rows: Array) -> None:
        """Update :attr:`drift` after a learning step whose epochs changed ``rows`` of W
        and B (only those: a zero error trace leaves a row's integers as they are)."""
        largest, change = ops.transpose_drift(self.W, self.B, rows, self._drift_rows)
        self.drift[0] = max(int(self.drift[0]), largest)
        self._drift_sq += change
        self.drift[1] += self._drift_sq
        self.drift[2] += self.W.size

    def transpose_drift(self) -> dict[str, float]:
        """``max_lsb``: the largest ``|B - W^T|`` after any learning step of the run, and
        ``rms_lsb``: its RMS over synapses and learning steps, in weight LSBs (chip timing;
        both 0 before any learning step)."""
        mx, sq, n = (int(v) for v in self.drift)
        return {"max_lsb": float(mx), "rms_lsb": float(np.sqrt(sq / n)) if n else 0.0}

    def learn_tau(self, new: X.FixedNeuronState, old: X.FixedNeuronState, t: int) -> None:
        """Integer tau_m step from the error and the step's change of u, then new factors."""
        tl = self.ql.tau
        if tl is None:
            return
        self.t[...], n = X.tau_step(self.t, new.e, new.u - old.u, tl,
                                    X.tau_dither(self.q.seed, self.index, t, tl))
        self._count("tau", n)
        self.consts = X.tau_constants(self.consts, self.t, tl)

    def var(self, st: X.FixedNeuronState, name: str) -> Array:
        """A state variable under the float names (``r``: the payload, ``r_prime``: the gate)."""
        return st.p if name == "r" else st.g if name == "r_prime" else getattr(st, name)

    def decode(self, name: str, raw: Array) -> Array:
        """Float values of a recorded variable (u, u_prosp, r, v, e) or a parameter
        (W, b, tau_m): the integers times their LSB (exact)."""
        return np.asarray(raw) * self.ql.scale(name)


class FixedKernels:
    """A quantised network's :class:`FixedLayer` list, the streams and the output error.

    ``saturation`` is the sink every layer reports to (default: a new
    :class:`SaturationCounter` over :func:`saturation_keys`).
    """

    arithmetic = "fixed"
    record_dtype = np.int64

    def __init__(self, q: QuantizedNetwork, saturation: SaturationSink | None = None) -> None:
        self.q, self.net = q, q.net
        self.saturation = (SaturationCounter(saturation_keys(q)) if saturation is None
                           else saturation)
        self.layers = [FixedLayer(q, i, self.saturation) for i in range(len(q.layers))]

    def encode(self, x: Array, y: Array | None) -> tuple[Array, Array | None]:
        """Input payloads and targets in the output rate format, clipping counted."""
        xq, n = self.q.quantize_inputs(x)
        self.saturation.add("input", n)
        if y is not None:
            y, n = self.q.quantize_targets(y)
            self.saturation.add("target", n)
        return xq, y

    def output_error(self, p: Array, y: Array | None) -> Array:
        if y is None:
            return np.zeros_like(p)
        d, n = ops.output_error(p, y, self.q.beta, self.q.beta_negative)
        self.saturation.add(f"e.{self.q.layers[-1].name}", n)
        return d

    def decode_output(self, raw: Array) -> Array:
        return np.asarray(raw) * self.q.layers[-1].scale("r")

    def describe(self, net: Network) -> Network:
        """``net`` (these kernels' network with their current parameters, dequantised) with
        the normalisers' state as it stands and the formats of the integers pinned
        (:meth:`~lava_gle.quantize.QuantizedNetwork.pinned`): without them the learned
        parameters would size other formats, and the description other integers."""
        return self.q.pinned(with_normaliser_states(net, self))

    def report_to(self, sink: SaturationSink) -> None:
        """Send every clipped-value count from now on to ``sink`` (e.g. shared counters)."""
        self.saturation = sink
        for k in self.layers:
            k.sat = sink

    def set_eta(self, eta: float) -> None:
        """Learning-engine rules for rate ``eta`` from now on (an epoch schedule): the
        rule, bias rule and error-trace shift :func:`~lava_gle.quantize.quantize_network`
        picks for the description at that ``learning.eta``; parameters and state stay.
        On a chip this rewrites each projection's learning-rule microcode between epochs;
        halving eta lowers the rule's exponent ``s_exp`` by one while it is above 1."""
        net = self.q.net
        q = quantize_network(net.with_learning(eta=eta))
        names = [f.name for f in fields(LayerLearning)]
        for k, ql in zip(self.layers, q.layers):
            k.ql = replace(k.ql, **{f: getattr(ql, f) for f in names})

    def set_epoch_steps(self, steps: int) -> None:
        """Learning epochs of ``steps`` steps (a power of two) from now on
        (:func:`check_no_begun_epoch`); the layers' formats and rules do not depend on it.
        On a chip the host rewrites, between training epochs, each projection's
        ``t_epoch`` and the neurons' epoch program (its length and shift; none for one
        step), as it rewrites the rule for an eta schedule. The engine's
        :class:`SaturationCounter` follows :func:`saturation_keys` and keeps the nonzero
        counts of keys these have no more (``esum.<layer>`` when epochs of one step follow
        longer ones): what was clipped stays counted."""
        if not isinstance(self.saturation, SaturationCounter):
            raise TypeError("set_epoch_steps keeps the counts of a SaturationCounter; these "
                            f"kernels report to a {type(self.saturation).__name__}")
        check_no_begun_epoch(self.layers, steps)
        q = replace(self.q, net=self.q.net.with_learning(epoch_steps=steps),
                    epoch_shift=epoch_shift(steps))
        self.q, self.net = q, q.net
        for k in self.layers:
            k.q, k.epoch = q, k.learning_epoch(q.epoch_shift)
        counts = self.saturation.counts
        keys = saturation_keys(q)
        self.saturation.counts = {**{key: counts.get(key, 0) for key in keys},
                                  **{key: n for key, n in counts.items() if n and key not in keys}}

    def learn(self, new: list, old: list, pres: list[Array], t: int, optimizer=None) -> None:
        """One step of every layer's normalisers, learning-engine rule (once per learning
        epoch, :func:`learn_in_epochs`) and integer tau_m learning."""
        for k, st in zip(self.layers, new):
            k.adapt(st)
        for k, st, st_old, p in zip(self.layers, new, old, pres):
            learn_in_epochs(k.epoch, k.learn_synapses, k.learning_error(st.e), p, t)
            k.learn_tau(st, st_old, t)
