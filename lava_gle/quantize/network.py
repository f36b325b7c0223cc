"""The quantisation pipeline: :func:`quantize_network` runs the passes in order.

1. rate and potential formats, from the input up (:class:`RateFormat`, :mod:`.formats`);
2. error formats and error-trace ranges, from the output down (:class:`ErrorFormat`);
3. per layer: Euler factors and tables (:mod:`.activation`), tau learning (:mod:`.tau`),
   weight and bias mantissas, learning rules (:mod:`.rules`);
4. the output error factor beta.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lava_gle.numerics import fixed as X
from lava_gle.numerics import floating as F
from lava_gle.numerics.activations import phi as float_phi
from lava_gle.description import check_network
from lava_gle.memory import require_memory
from lava_gle.network import LayerSpec, Network
from lava_gle.quantize import manifest as _manifest
from lava_gle.quantize.activation import BOUNDED_PHI, SIGNED_PHI, fixed_activation
from lava_gle.quantize.formats import (
    SIGNED_PAYLOAD, QuantizationError, check_dead_zone, check_gain_resolution, error_bits_for,
    payload_max, quantize_factor, rate_bits_for, sent_error_bits_for, state_bits_for,
    to_mantissas, weight_exp, wide_rate_bits,
)
from lava_gle.quantize.rules import layer_learning
from lava_gle.quantize.tau import check_tau_factors, tau_learning


@dataclass(frozen=True, eq=False)
class QuantizedLayer:
    """Integer formats, constants and parameters of one layer and the projection into it.

    Formats are fraction bits: a value ``x`` is held as ``round(x * 2**bits)``.

    Attributes
    ----------
    name, size, phi : as in the description.
    u_bits : int
        Potential format (u, u_prosp, drive s), 24-bit signed.
    e_bits : int
        Error format (v, e, incoming error d), 24-bit signed.
    rate_bits : int
        Rate payload format; payloads are 8 bit (0..255, or -127..127 when ``rate_signed``),
        the output layer's 24 bit (:func:`wide_rate_bits`: its rates enter no learning
        engine, and the output error is formed from them), and so are those of a layer
        with gains (it sends the 8-bit payload ``g r`` formed from them instead).
    range_bits : int
        The rate format of the layer's range (``fixed_point.rate_bits``): ``rate_bits``
        itself, or for a 24-bit rate the 8-bit format it widens.
    trace_range : float
        The error magnitude the learning error trace spans (``fixed_point.
        error_trace_range`` or what the quantiser derived), from which ``trace_shift``
        follows.
    trace_shift : int
        Learning error trace ``e_q = (trace_mant e + dither) >> trace_shift`` (stochastic
        rounding) clipped to +-63.
    trace_mant : int
        1, or the trace's 4-bit mantissa (:func:`~lava_gle.numerics.fixed.error_trace`):
        an exact rule's gain between powers of two.
    trace_coarsening : int
        Bits by which the learning gain made the trace coarser than ``error_trace_range``
        asks (see ``docs/fixed-point.md``, section 3).
    pre_trace_coarsening : int
        Bits by which the learning gain made the presynaptic rate trace coarser than the
        payload's own (at most the ``pre_trace_coarsening`` option; 0: x1 is the payload's
        trace), stochastically rounded (:func:`~lava_gle.numerics.fixed.pre_trace`).
    consts : FixedNeuronConstants
    w : int64 [n, m]
        Weights, ``W = w * 2**w_exp``; ``w_shift`` turns ``w @ p`` into the potential format.
    b : int64 [n]
        Biases, ``b = wb * 2**b_exp``; ``b_shift`` turns ``wb`` into the potential format.
    back_shift : int or None
        Turns ``e @ w`` into the error format of the layer below (None for the first layer).
    rule, bias_rule : LearningRuleConstants, BiasRule or None
        Learning-engine form of the weight and bias updates (None without learning); the
        bias rule names its bias neuron's payload.
    tau : TauLearning or None
        Integer tau_m learning (``learning.learn_tau``), see docs/fixed-point.md.
    gain_target, bias_gain_target : float
        The wanted weight and bias gains (LSB per unit of x1*e_q per step; the biases'
        x1 is their bias neuron's, ``bias_rule.payload``).
    norm : NormaliserFormat or None
        The layer's neuron-local normalisers (``gain_decay``, ``error_norm_decay``) in
        integers; None without.
    norm_state : dict of str to int64 array, or None
        The description's ``normaliser_state`` in integers by kind (``norm_steps``,
        ``gain_ms``, ``error_ms``: :func:`normaliser_integers`), the running mean squares of
        the 24-bit rate ``p`` and of ``e`` in their LSBs; None: the normalisers start from
        the prior.
    tag_bits : int
        ``fixed_point.weight_tag_bits`` where the layer learns: 0, or the bits of the
        synaptic tag kept below each weight's and bias's LSB
        (:func:`~lava_gle.numerics.fixed.carry_tags`; NumPy reference kernels, exact timing
        only). Then ``rule``, ``bias_rule``, the traces and the gains are those of weights
        and biases ``tag_bits`` finer: the rules move the tags.
    pre_bits, pre_signed : int, bool
        Rate format and signedness of the presynaptic learning payloads (input or layer
        below), the payloads the learning engine traces.
    pre_wide_bits : int
        Fraction bits the summed presynaptic payloads keep beyond ``pre_bits`` (a layer
        below with gains and ``gain_payload_bits`` > 8; 0 otherwise): ``w_shift`` is
        for them, and learning traces :func:`~lava_gle.numerics.fixed.learning_payload`.
    """

    name: str
    size: int
    phi: str
    bias: bool
    u_bits: int
    e_bits: int
    rate_bits: int
    rate_signed: bool
    range_bits: int
    trace_range: float
    trace_shift: int
    trace_mant: int
    trace_coarsening: int
    pre_trace_coarsening: int
    consts: X.FixedNeuronConstants
    w: np.ndarray
    w_exp: int
    w_shift: int
    b: np.ndarray
    b_exp: int
    b_shift: int
    back_shift: int | None
    rule: X.LearningRuleConstants | None
    bias_rule: X.BiasRule | None
    tau: X.TauLearning | None
    pre_bits: int
    pre_signed: bool
    phi_max_error: float
    gain_target: float
    bias_gain_target: float
    tag_bits: int = 0
    norm: X.NormaliserFormat | None = None
    pre_wide_bits: int = 0
    norm_state: dict[str, np.ndarray] | None = None

    def scale(self, var: str) -> float:
        """Float value of one LSB of ``var`` (u, u_prosp, r, v, e, W, b, and tau_m when it
        learns)."""
        if var == "tau_m" and self.tau is not None:
            return 2.0 ** -self.tau.tau_bits
        return {"u": 2.0 ** -self.u_bits, "u_prosp": 2.0 ** -self.u_bits,
                "r": 2.0 ** -self.rate_bits, "v": 2.0 ** -self.e_bits,
                "e": 2.0 ** -self.e_bits, "W": 2.0 ** self.w_exp,
                "b": 2.0 ** self.b_exp}[var]


@dataclass(frozen=True, eq=False)
class QuantizedNetwork:
    """A network in integers: per-layer formats, constants and parameters.

    Attributes
    ----------
    net : Network
        The float description it was made from.
    layers : list of QuantizedLayer
    in_bits : int
        Input payload format (signed 8 bit, -127..127).
    beta : Factor
        ``|beta| * 2**(e_bits_top - rate_bits_top)``: output error from rate units.
    beta_negative : bool
    seed : int
        Seed of the counter-based stochastic rounding (stream ``2 l`` for W of layer l,
        ``2 l + 1`` for its bias).
    per_synapse_rounding : bool
        One rounding number per synapse and step (default), or one per projection.
    chip_timing : bool
        ``fixed_point.timing: chip``: every layer above the first keeps a separate
        backward array that learns with its own learning-engine epoch one step after the
        forward array (``docs/fixed-point.md``, "Chip timing"); default exact timing.
    mirrored_backward_rounding : bool
        ``fixed_point.backward_rounding: mirrored``: the backward arrays draw the forward
        arrays' rounding numbers (their learning engines seeded alike), so they stay exact
        transposes; default independent draws, as separate cores make them.
    product_bits : int
        The multiplier's product width (sign included) the phi segments were designed for.
    acc_bits : int
        The dendritic accumulator's width (sign included): drive sums ``W p`` and
        ``W^T e`` saturate to it.
    epoch_shift : int
        ``log2(learning.epoch_steps)``: every array learns once per ``2**epoch_shift``
        steps from the learning error summed in the neurons' 24-bit state and the mean
        payload (the sum shifted right, rounded; :class:`~lava_gle.numerics.kernels.LearningEpoch`).
    """

    net: Network
    layers: list[QuantizedLayer]
    in_bits: int
    beta: X.Factor
    beta_negative: bool
    seed: int
    product_bits: int
    acc_bits: int
    per_synapse_rounding: bool = True
    chip_timing: bool = False
    mirrored_backward_rounding: bool = False
    epoch_shift: int = 0

    def quantize_inputs(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Input payloads ``clip(round(x * 2**in_bits), -127, 127)`` and the clip count."""
        return X.to_fixed(x, self.in_bits, *SIGNED_PAYLOAD, what="inputs")

    def quantize_targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """Targets in the output rate format (24-bit signed, clip counted)."""
        return X.to_fixed(y, self.layers[-1].rate_bits, -X.STATE_MAX, X.STATE_MAX,
                          what="targets")

    def pinned(self, net: Network) -> Network:
        """``net`` (this network after a run changed its parameters) with every format
        this quantisation derived from the parameters written into its layers'
        ``fixed_point`` options (``weight_exp``, ``bias_exp``, ``u_bits``, ``error_bits``,
        ``rate_bits``, for a learning layer whose error trace spans a range derived from
        the weights ``error_trace_range``, and where tau_m learns ``tau_bits``), so that it quantises to these formats
        again: without them the new weights would size new exponents and formats, and
        other integers. Options ``net`` sets win (they gave these formats)."""
        layers = []
        for layer, ql in zip(net.layers, self.layers):
            pin = {"weight_exp": ql.w_exp, "bias_exp": ql.b_exp, "u_bits": ql.u_bits,
                   "error_bits": ql.e_bits, "rate_bits": ql.range_bits}
            if ql.rule is not None and layer.error_bound is None \
                    and layer.error_norm_decay is None:  # else the trace spans what they fix
                pin["error_trace_range"] = ql.trace_range
            if ql.tau is not None:
                pin["tau_bits"] = ql.tau.tau_bits
            layers.append(replace(layer, fixed_point={**pin, **layer.fixed_point}))
        return replace(net, layers=tuple(layers))

    def manifest(self) -> dict[str, Any]:
        """Formats, exponents and neuron constants per layer, JSON-ready
        (:func:`lava_gle.quantize.manifest.manifest`)."""
        return _manifest.manifest(self)

    def arrays(self) -> dict[str, np.ndarray]:
        """Integer arrays: ``W.L``, ``b.L`` and a described normaliser state
        (:func:`lava_gle.quantize.manifest.arrays`)."""
        return _manifest.arrays(self)

    def check_quantizes(self, net: Network) -> None:
        """Refuse these integers (given as ``qnet=``) for ``net`` unless they quantise a
        network of the same structure and dynamics: dt, input size, layer names, sizes,
        phi, bias, time constants and learning settings. Parameters and ``fixed_point``
        options may differ (a bundle's own integers, a backend's timing)."""
        mine, diffs = self.net, []
        if mine.dt != net.dt or mine.input.size != net.input.size:
            diffs.append(f"dt {mine.dt:g} / {net.dt:g}, input size {mine.input.size} / "
                         f"{net.input.size}")
        if [(a.name, a.size) for a in mine.layers] != [(b.name, b.size) for b in net.layers]:
            diffs.append(f"layers {[(a.name, a.size) for a in mine.layers]} / "
                         f"{[(b.name, b.size) for b in net.layers]}")
        else:
            for a, b in zip(mine.layers, net.layers):
                if (a.phi, a.bias) != (b.phi, b.bias) or not (
                        np.array_equal(a.tau_m_array(), b.tau_m_array())
                        and np.array_equal(a.tau_r_array(), b.tau_r_array())):
                    diffs.append(f"layer {a.name!r}'s phi, bias or time constants")
        diffs += [f"learning.{key} {getattr(mine.learning, key)} / {getattr(net.learning, key)}"
                  for key in vars(mine.learning)
                  if getattr(mine.learning, key) != getattr(net.learning, key)]
        if diffs:
            raise QuantizationError(
                f"qnet quantises another network than the one given ({'; '.join(diffs)}: "
                "qnet's / the given); pass qnet.net as the network, or quantize_network(net)")


@dataclass(frozen=True)
class Options:
    """The network-level ``fixed_point`` options with their defaults (see
    ``docs/fixed-point.md``, section 5)."""

    learns: bool
    growth: float
    w_headroom: float
    in_range: float
    w_floor: float
    #: ``(weight_headroom, weight_range)`` of a projection that does not learn (``eta_scale``
    #: 0 in a learning network): the options where given, else the defaults without learning
    w_fixed: tuple[float, float]
    product_bits: int
    acc_bits: int
    gain_payload_bits: int

    @classmethod
    def of(cls, net: Network) -> Options:
        opts, learns = net.fixed_point, net.learns
        product_bits, acc_bits = profile_widths()
        # learned weights may grow; fixed ones are what they are
        fixed = (float(opts.get("weight_headroom", 1.0)), float(opts.get("weight_range", 0.0)))
        return cls(learns=learns, growth=float(opts.get("signal_growth", 8.0)),
                   w_headroom=float(opts.get("weight_headroom", 2.0)) if learns else fixed[0],
                   in_range=float(opts.get("input_range", 2.0)),
                   w_floor=float(opts.get("weight_range", 4.0)) if learns else fixed[1],
                   w_fixed=fixed,
                   product_bits=int(opts.get("product_bits", product_bits)),
                   acc_bits=int(opts.get("accumulator_bits", acc_bits)),
                   gain_payload_bits=int(opts.get("gain_payload_bits",
                                                  DEFAULT_GAIN_PAYLOAD_BITS)))


@functools.lru_cache(maxsize=1)
def profile_widths() -> tuple[int, int]:
    """``(product_bits, accumulator_bits)`` of the default hardware profile
    (``lava_gle/profiles/loihi2.yaml``): the defaults of the ``fixed_point`` options of
    the same names."""
    from lava_gle.mappings.profiles import load_profile  # mappings imports quantize
    profile = load_profile()
    return profile.product_bits, profile.accumulator_bits


@dataclass(frozen=True)
class RateFormat:
    """Pass 1 for one layer: its rate format (``range_bits`` in 8-bit terms, ``rate_bits``
    as sent, 24 bit when ``wide``), potential format ``u_bits``, the bound of its drive
    from the initial weights, and the presynaptic rate format (of the learning payload,
    and the summed payload's ``pre_wide`` fraction bits beyond it)."""

    rate_bits: int
    range_bits: int
    wide: bool
    signed: bool
    u_bits: int
    drive: float
    pre_bits: int
    pre_signed: bool
    pre_wide: int = 0


@dataclass(frozen=True)
class ErrorFormat:
    """Pass 2 for one layer: error format, error bound (without prospective overshoot)
    and the least error magnitude that maps to the largest learning trace."""

    e_bits: int
    e_bound: float
    trace_range: float


def rate_formats(net: Network, weights: list[np.ndarray], biases: list[np.ndarray],
                 opts: Options, in_bits: int) -> list[RateFormat]:
    """Forward pass of bounds: rate and potential formats, from the input up."""
    r_range_below, pre_bits, pre_signed, pre_wide = opts.in_range, in_bits, True, 0
    out = []
    for i, layer in enumerate(net.layers):
        o, w, b = layer.fixed_point, weights[i], biases[i]
        drive = float(np.max(np.abs(w).sum(axis=1) * r_range_below + np.abs(b)))
        signed = layer.phi in SIGNED_PHI
        if layer.phi in BOUNDED_PHI:
            r_max = r_init = BOUNDED_PHI[layer.phi]
        else:
            # learned weights may grow: half of the headroom's bits go to the rate range
            grown = drive * math.sqrt(opts.growth)
            r_max = float(np.max(float_phi(layer.phi)(np.array([grown, -grown]))))
            r_init = float(np.max(float_phi(layer.phi)(np.array([drive, -drive]))))
        range_bits = o.get("rate_bits", rate_bits_for(r_max, signed))
        # the output layer's rates form the output error; a layer with gains sends g r,
        # rounded to 8 bits only after the gain (before it, a neuron whose rates span a
        # few LSB of an 8-bit format would send its rounding noise times its gain)
        wide = i == len(net.layers) - 1 or layer.gain_decay is not None
        rate_bits = wide_rate_bits(range_bits, signed) if wide else range_bits
        # 4x headroom in the state; the drive itself fits the dendritic accumulator
        grown_drive = max(drive * opts.growth, 1.0)
        u_bits = o.get("u_bits", min(state_bits_for(4.0 * grown_drive),
                                     state_bits_for(grown_drive, opts.acc_bits)))
        out.append(RateFormat(rate_bits, range_bits, wide, signed, u_bits, drive, pre_bits,
                              pre_signed, pre_wide))
        r_range_below = min(r_init, payload_max(signed) * 2.0 ** -rate_bits)
        pre_bits, pre_signed, pre_wide = rate_bits, signed, 0
        if layer.gain_decay is not None:  # the layer above reads q = g r, RMS 1
            pre_bits = gain_payload_bits(signed)
            pre_wide = opts.gain_payload_bits - 8
            r_range_below = payload_max(signed) * 2.0 ** -pre_bits
    return out


#: Fraction bits of the 8-bit learning payload of ``q = g r`` of a layer with gains (RMS
#: 1): signed 4 (-7.9..7.9), unsigned 5 (0..7.97), about 8 RMS either way.
GAIN_PAYLOAD_BITS = {True: 4, False: 5}
#: ``fixed_point.gain_payload_bits`` when a description does not say: the width of the
#: summed payload ``q = g r`` (the same range as the 8-bit learning payload, 8 more
#: fraction bits; ``docs/fixed-point.md``, "Neuron-local normalisers in integers").
DEFAULT_GAIN_PAYLOAD_BITS = 16


def gain_payload_bits(signed: bool) -> int:
    """Fraction bits of a gained learning payload (:data:`GAIN_PAYLOAD_BITS`)."""
    return GAIN_PAYLOAD_BITS[signed]


#: The error trace of a layer with an error normaliser spans this many RMS of its error
#: (twice it under exact learning products, whose trace clips at half its range).
NORM_TRACE_RANGE = 4.0


def decay_shift(decay: float) -> int | None:
    """``s`` with ``1 - decay = 2**-s`` exactly (1 <= s <= 30; a shift on integers), or
    None for any other decay (:func:`nearest_shift_decay` names the nearest)."""
    s = round(-math.log2(1.0 - decay))
    return s if 1 <= s <= 30 and 1.0 - 2.0 ** -s == decay else None


def nearest_shift_decay(decay: float) -> str:
    """The decay of the form ``1 - 2**-s`` nearest to ``decay``, as a hint in messages."""
    s = min(max(round(-math.log2(1.0 - decay)), 1), 30)
    return f"{1.0 - 2.0 ** -s!r} (1 - 2**-{s})"


def _decay_shift(layer: LayerSpec, key: str) -> int | None:
    decay = getattr(layer, key)
    if decay is None:
        return None
    s = decay_shift(decay)
    if s is None:
        raise QuantizationError(f"layer {layer.name!r}: {key} {decay!r} is not 1 - 2**-s; the "
                                "integers average with a shift: use "
                                f"{nearest_shift_decay(decay)}")
    return s


def normaliser_integers(layer: LayerSpec, rate_bits: int, e_bits: int
                        ) -> dict[str, np.ndarray] | None:
    """A layer's ``normaliser_state`` in integers, by kind (:meth:`NormaliserState.arrays`):
    the mean squares rounded to the LSBs of the squared 24-bit rate (``rate_bits`` fraction
    bits) and error (``e_bits``); None without a state. A mean square beyond a 24-bit
    value's (2**46) is refused: the state does not fit the layer's formats."""
    state = layer.normaliser_state
    if state is None:
        return None
    out = state.arrays()
    for key, bits in (("gain_ms", rate_bits), ("error_ms", e_bits)):
        if key not in out:
            continue
        ms = out[key]
        scaled = ms * 2.0 ** (2 * bits)
        if np.max(scaled) >= 2.0 ** (2 * X.STATE_BITS - 2):
            raise QuantizationError(
                f"layer {layer.name!r}: normaliser_state.{key} reaches {np.max(ms):g}, beyond "
                f"the mean square of a 24-bit {'rate' if key == 'gain_ms' else 'error'} with "
                f"{bits} fraction bits; give the layer a format with fewer fraction bits "
                f"(fixed_point.{'rate_bits' if key == 'gain_ms' else 'error_bits'}) or "
                "drop the state")
        out[key] = np.round(scaled).astype(np.int64)
    return out


def normaliser_format(layer: LayerSpec, rate: RateFormat, e_bits: int,
                      payload_bits: int) -> X.NormaliserFormat | None:
    """A layer's neuron-local normalisers in integers (None without); ``payload_bits``
    the width of its gained payload (``fixed_point.gain_payload_bits``)."""
    if layer.gain_decay is None and layer.error_norm_decay is None:
        return None
    q_bits, wide = gain_payload_bits(rate.signed), payload_bits - 8
    return X.NormaliserFormat(
        gain_shift=_decay_shift(layer, "gain_decay"),
        error_shift=_decay_shift(layer, "error_norm_decay"),
        q_bits=q_bits, wide_bits=wide,
        payload_shift=X.GAIN_FRAC + rate.rate_bits - q_bits - wide,
        gain_k=X.GAIN_FRAC + rate.rate_bits,
        gain_max=round(layer.gain_max * 2.0 ** X.GAIN_FRAC),
        norm_shift=X.NORM_FRAC - e_bits,
        norm_max=min(F.NORM_MAX * 2.0 ** (X.NORM_FRAC - e_bits), X.NU_MAX))


#: ``fixed_point.learning_products`` when a description does not say: ``exact`` (mantissa 4
#: on the doubled error trace, ``docs/fixed-point.md`` section 3, "Exact products"); the
#: ``compensated`` rule overshoots by about a quarter product quantum per active product.
DEFAULT_LEARNING_PRODUCTS = "exact"


def exact_products(net: Network) -> bool:
    """Whether ``net`` learns with exact products (:data:`DEFAULT_LEARNING_PRODUCTS`)."""
    return net.fixed_point.get("learning_products", DEFAULT_LEARNING_PRODUCTS) == "exact"


def error_formats(net: Network, weights: list[np.ndarray], top: RateFormat,
                  growth: float, acc_bits: int) -> list[ErrorFormat]:
    """Backward pass of bounds: error formats and error-trace ranges, from the output
    (rate format ``top``) down. Below the output the error arrives through the dendritic
    accumulator (``acc_bits`` wide), which must hold its bound too. A layer's
    ``error_bound`` is held by its default error format and sets its trace range (unless
    ``error_trace_range`` is given): the bound, twice it under exact learning products
    (whose trace clips at half its range)."""
    lrn = net.learning
    exact = exact_products(net)
    r_range_top = payload_max(top.signed) * 2.0 ** -top.range_bits
    # beta 0 forms no output error: any error format will do, size it as for beta 1
    beta_scale = abs(lrn.beta) if lrn.beta != 0 else 1.0
    d_bound = beta_scale * 2.0 * r_range_top
    trace_range = beta_scale * r_range_top / 8.0
    out: list[ErrorFormat] = []
    for layer, w in zip(reversed(net.layers), reversed(weights)):
        overshoot = 1.0
        if lrn.prospective_errors:
            overshoot += float(np.max(layer.tau_m_array() / layer.tau_r_array()))
        e_bound = max(d_bound * overshoot, 2.0 ** -16)
        o = layer.fixed_point
        e_bits = error_bits_for(e_bound)
        if out:  # below the output: eps = W^T e through the accumulator
            e_bits = min(e_bits, sent_error_bits_for(d_bound, acc_bits))
        if layer.error_bound is not None:  # the format holds it, the trace spans it
            e_bits = min(e_bits, error_bits_for(layer.error_bound))
            trace_range = layer.error_bound * (2.0 if exact else 1.0)
        if layer.error_norm_decay is not None:  # the trace holds the normalised error
            trace_range = NORM_TRACE_RANGE * (2.0 if exact else 1.0)
        fmt = ErrorFormat(e_bits=o.get("error_bits", e_bits),
                          e_bound=e_bound / overshoot,
                          trace_range=o.get("error_trace_range", trace_range))
        out.insert(0, fmt)
        col = float(np.abs(w).sum(axis=0).max())
        d_bound = e_bound * col * growth
        trace_range = fmt.trace_range * max(col, 2.0 ** -8) * math.sqrt(growth)
    return out


def error_bound_mantissa(bound: float, e_bits: int, layer: str) -> int:
    """A layer's ``error_bound`` in its error format (``e_bits`` fraction bits); a bound at
    the format's limit (``2**23`` LSB, e.g. a power of two with the bits that just hold
    it) is the state's own limit."""
    e_max = round(bound * 2.0 ** e_bits)
    if e_max == X.STATE_MAX + 1:
        e_max = X.STATE_MAX
    if not 1 <= e_max <= X.STATE_MAX:
        raise QuantizationError(
            f"layer {layer!r}: error_bound {bound:g} is {e_max} LSB of its error format "
            f"(error_bits {e_bits}), which holds 1..{X.STATE_MAX}; "
            + ("raise fixed_point.error_bits or the bound" if e_max < 1 else
               "lower the bound or fixed_point.error_bits"))
    return e_max


def quantize_layer(net: Network, layer: LayerSpec, rate: RateFormat, err: ErrorFormat,
                   below: ErrorFormat | None, w: np.ndarray, b: np.ndarray,
                   opts: Options) -> QuantizedLayer:
    """Pass 3 for one layer: neuron constants, tables, tau learning, weight and bias
    mantissas and learning rules (``below``: error format of the layer below, if any)."""
    lrn, o, name = net.learning, layer.fixed_point, layer.name
    learns = net.plastic(net.index(name))
    tm, tr = layer.tau_m_array(), layer.tau_r_array()
    e_bits, u_bits = err.e_bits, rate.u_bits
    gamma = None
    if lrn.gamma != 0.0:
        gamma = quantize_factor(abs(lrn.gamma) * 2.0 ** (u_bits - e_bits), "gamma", name,
                                scale=True)
    act, phi_err = fixed_activation(layer.phi, u_bits, rate.rate_bits, rate.signed, rate.wide,
                                    name, opts.product_bits)
    tau = None
    if lrn.enabled and lrn.learn_tau and lrn.eta_tau > 0:
        tau = tau_learning(net, tm, tr, e_bits, u_bits, name, o.get("tau_bits"))
    if tau is None or "tau_bits" not in o:  # the description's time constants: 1 % check
        tau_factors = {"dt_m": quantize_factor(net.dt / tm, "dt/tau_m", name),
                       "tau_r_m": quantize_factor(tr / tm, "tau_r/tau_m", name),
                       "tau_m_r": quantize_factor(tm / tr, "tau_m/tau_r", name)}
    if tau is not None:  # those of integer T, as the kernels re-derive them while it learns
        check_tau_factors(tau, name)
        tau_factors = X.tau_factors(tau.t_init, tau)
    consts = X.FixedNeuronConstants(
        **tau_factors, dt_r=quantize_factor(net.dt / tr, "dt/tau_r", name), gamma=gamma, gamma_negative=lrn.gamma < 0,
        prospective=lrn.prospective_errors, phi=act, product_bits=opts.product_bits,
        e_max=None if layer.error_bound is None
        else error_bound_mantissa(layer.error_bound, e_bits, name))
    check_dead_zone(name, "dt/tau_m", float(np.min(net.dt / tm)), u_bits,
                    max(rate.drive, 2.0 ** -u_bits), "u_bits")
    if lrn.prospective_errors:
        check_dead_zone(name, "dt/tau_r", float(np.min(net.dt / tr)), e_bits, err.e_bound,
                        "error_bits")
    headroom, floor = (opts.w_headroom, opts.w_floor) if learns else opts.w_fixed
    w_exp = o.get("weight_exp", weight_exp(w, headroom, floor))
    w_q = to_mantissas(w, w_exp, name, "weights", fixed=not learns)
    if learns and layer.gain_decay is not None:
        check_gain_resolution(name, layer.gain_max, w_exp)
    b_exp = o.get("bias_exp", weight_exp(b, headroom, floor / 4.0)
                  if layer.bias else w_exp)
    b_q = to_mantissas(b, b_exp, name, "biases")
    tag_bits = o.get("weight_tag_bits", 0) if learns else 0
    if tag_bits and tag_bits not in X.TAG_BITS:
        raise QuantizationError(f"layer {name!r}: fixed_point.weight_tag_bits {tag_bits} has "
                                f"no learning-engine carry; use 0 (off) or one of "
                                f"{', '.join(map(str, X.TAG_BITS))}")
    # with tags the rules move the tags: a weight format tag_bits finer
    # with an error normaliser the trace is taken from the normalised error nu e
    normalised = layer.error_norm_decay is not None
    trace_bits = X.NORM_FRAC if normalised else e_bits
    learn = layer_learning(lrn.eta * layer.eta_scale, learns, layer.bias, trace_bits,
                           err.trace_range, rate.pre_bits, rate.pre_signed, w_exp - tag_bits,
                           b_exp - tag_bits, name,
                           o.get("pre_trace_coarsening", 0),
                           exact_products(net),
                           X.STATE_BITS + (X.NORM_FRAC if normalised else 0))
    ql = QuantizedLayer(
        name=name, size=layer.size, phi=layer.phi, bias=layer.bias, u_bits=u_bits,
        tag_bits=tag_bits, e_bits=e_bits, rate_bits=rate.rate_bits, rate_signed=rate.signed,
        range_bits=rate.range_bits, trace_range=err.trace_range, consts=consts, w=w_q,
        w_exp=w_exp, w_shift=w_exp - rate.pre_bits - rate.pre_wide + u_bits, b=b_q,
        b_exp=b_exp, pre_wide_bits=rate.pre_wide,
        b_shift=b_exp + u_bits, back_shift=None if below is None
        else w_exp - e_bits + below.e_bits, tau=tau, pre_bits=rate.pre_bits,
        pre_signed=rate.pre_signed, phi_max_error=phi_err,
        norm=normaliser_format(layer, rate, e_bits, opts.gain_payload_bits),
        norm_state=normaliser_integers(layer, rate.rate_bits, e_bits), **vars(learn))
    check_left_shifts(ql, w_q.shape[1])
    return ql


#: Largest magnitude a left-shifted value may reach: int64 with a bit to spare for the sum
#: it joins before it saturates.
SHIFTED_MAX = 1 << 62


def check_left_shifts(ql: QuantizedLayer, fan_in: int) -> None:
    """Refuse formats whose left shifts (format conversions that gain bits) could carry
    the largest operand beyond 64-bit integers: it would wrap before the saturation that
    follows, and flip signs uncounted. Only extreme ``fixed_point`` overrides get there
    (e.g. ``u_bits`` 23 with ``error_bits`` -16 and a large gamma)."""
    w_top = -X.W_MIN  # weights and biases: sign and 8 bits
    p_top = 1 << (8 + ql.pre_wide_bits)
    shifts = [("the drive W p", w_top * p_top * fan_in, ql.w_shift,
               "a lower fixed_point.u_bits or weight_exp"),
              ("the bias", w_top, ql.b_shift, "a lower fixed_point.u_bits or bias_exp")]
    if ql.consts.gamma is not None:
        shifts.append(("gamma' = gamma * 2**(u_bits - error_bits) times the error",
                       X.STATE_MAX * int(np.max(ql.consts.gamma.mant)), -ql.consts.gamma.shift,
                       "a lower fixed_point.u_bits, a higher error_bits or a smaller "
                       "learning.gamma"))
    if ql.back_shift is not None:
        shifts.append(("the error sent down W^T e", w_top * X.STATE_MAX * ql.size,
                       ql.back_shift + X.BACKWARD_GUARD_BITS,
                       "a higher fixed_point.error_bits here, or a lower weight_exp or "
                       "error_bits in the layer below"))
    for what, top, shift, hint in shifts:
        if shift > 0 and top << shift >= SHIFTED_MAX:
            raise QuantizationError(
                f"layer {ql.name!r}: {what} is shifted left by {shift} bits, which carries "
                f"values up to {top} beyond 64-bit integers; set {hint}", ql.name)


def epoch_shift(steps: int) -> int:
    """``log2(steps)`` for learning epochs of ``steps`` steps
    (:attr:`QuantizedNetwork.epoch_shift`); a length that is not a power of two raises
    :class:`QuantizationError` naming the two nearest."""
    if steps & (steps - 1):
        raise QuantizationError(
            f"learning.epoch_steps {steps} is not a power of two; fixed point averages the "
            f"payloads of a learning epoch with a shift: give "
            f"{1 << (steps.bit_length() - 1)} or {1 << steps.bit_length()}")
    return steps.bit_length() - 1


def quantize_network(net: Network) -> QuantizedNetwork:
    """Derive the integer formats, constants and parameters of ``net``.

    Defaults (each overridable under ``fixed_point:``, see ``docs/fixed-point.md``):
    input payload for ``|x| <= input_range``; weight exponent so that the largest initial
    |W| times ``weight_headroom``, and at least ``weight_range``, fits 8 bits; rate
    formats from the largest rate the initial weights can produce, rounded up to a power
    of two; 24-bit potential and error formats from bounds that include the weight
    headroom and the prospective overshoot ``tau_m / tau_r``; error traces spanning
    ``|beta| * rate range / 8`` at the output.

    Raises
    ------
    QuantizationError
        For a factor or learning gain the formats cannot hold (names the layer and value).
    MemoryLimitError
        The weights and tables would not fit in the available memory (checked first).
    """
    check_network(net)
    lrn = net.learning
    if lrn.loss != "mse":
        raise QuantizationError(f"loss {lrn.loss!r} has no fixed-point form yet (softmax); "
                                "use loss 'mse' for the fixed-point backends")
    if lrn.backward == "feedback_alignment":
        raise QuantizationError("backward 'feedback_alignment' has no fixed-point form yet; "
                                "use backward 'transpose' for the fixed-point backends")
    shift = epoch_shift(lrn.epoch_steps)
    require_memory(net, "quantize")
    opts = Options.of(net)
    in_bits = rate_bits_for(opts.in_range, True)
    weights = [net.initial_weights(i) for i in range(len(net.layers))]
    biases = [net.initial_biases(i) for i in range(len(net.layers))]
    rates = rate_formats(net, weights, biases, opts, in_bits)
    errors = error_formats(net, weights, rates[-1], opts.growth, opts.acc_bits)
    layers = []
    for i, layer in enumerate(net.layers):  # a loop, not a comprehension: warning stacklevels
        layers.append(quantize_layer(net, layer, rates[i], errors[i],
                                     errors[i - 1] if i else None, weights[i], biases[i],
                                     opts))
    top = layers[-1]
    beta = quantize_factor(abs(lrn.beta) * 2.0 ** (top.e_bits - top.rate_bits), "beta",
                           top.name, scale=True) if lrn.beta != 0 else X.Factor(np.array(0), 0)
    return QuantizedNetwork(net=net, layers=layers, in_bits=in_bits, beta=beta,
                            beta_negative=lrn.beta < 0, seed=int(net.fixed_point.get("seed", 0)),
                            per_synapse_rounding=net.fixed_point.get("rounding", "per_synapse")
                            == "per_synapse",
                            chip_timing=net.fixed_point.get("timing", "exact") == "chip",
                            mirrored_backward_rounding=net.fixed_point.get(
                                "backward_rounding", "independent") == "mirrored",
                            product_bits=opts.product_bits, acc_bits=opts.acc_bits,
                            epoch_shift=shift)
