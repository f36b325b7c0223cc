"""Quantise a float GLE network description into Loihi-2-style integers.

:func:`quantize_network` derives every integer format, constant and parameter of
the fixed-point arithmetic (:mod:`lava_gle.arithmetic.fixed`) from the float
description, honouring the ``fixed_point:`` overrides of the description
(:mod:`lava_gle.fixed_options`). The formats are explained in
``docs/fixed-point.md``. A deployment bundle is written from exactly
:meth:`QuantizedNetwork.manifest` (JSON-ready formats and constants) and
:meth:`QuantizedNetwork.arrays` (integer arrays).

Settings the formats cannot hold raise :class:`QuantizationError` (or warn with
:class:`QuantizationWarning` when the run is still meaningful), naming the layer
and the number, before anything runs.

Example
-------
>>> from lava_gle import load_network
>>> from lava_gle.quantize import quantize_network
>>> q = quantize_network(load_network("tests/data/golden/visible_lagline/network.json"))
>>> q.layers[1].rate_bits, q.layers[1].w_exp
(19, -5)
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from lava_gle.arithmetic import fixed as X
from lava_gle.arithmetic.activations import phi as float_phi, phi_prime as float_phi_prime
from lava_gle.errors import LavaGleError
from lava_gle.memory import require_memory
from lava_gle.network import Network

#: Largest relative error tolerated when a factor is rounded to its mantissa.
FACTOR_TOLERANCE = 0.01
#: Largest lookup table (entries) for phi and phi'.
MAX_TABLE = 8192
#: Relative learning-gain error above which quantisation warns.
GAIN_TOLERANCE = 0.10
#: Payload ranges of rates.
UNSIGNED_PAYLOAD = (0, 255)
SIGNED_PAYLOAD = (-127, 127)
#: Table step (fraction bits of the potential) of the output layer's interpolated phi.
WIDE_TABLE_BITS = 7

#: Activations with signed rates (payloads -127..127).
SIGNED_PHI = {"linear", "tanh"}
#: Activations whose rate range is known exactly.
BOUNDED_PHI = {"sigmoid": 1.0, "hard_sigmoid": 1.0, "tanh": 1.0}
_TABLE_SLOPE = {"sigmoid": 0.25, "tanh": 1.0, "softplus": 1.0}


class QuantizationError(LavaGleError, ValueError):
    """A setting of the float description has no faithful fixed-point form."""


class QuantizationWarning(UserWarning):
    """A fixed-point setting loses accuracy (saturating weights, approximate gains)."""


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
        engine, and the output error is formed from them).
    trace_shift : int
        Learning error trace ``e_q = (e + dither) >> trace_shift`` (stochastic rounding)
        clipped to +-63.
    trace_coarsening : int
        Bits by which the learning gain made the trace coarser than ``error_trace_range``
        asks (see ``docs/fixed-point.md``, section 3).
    consts : FixedNeuronConstants
    w : int64 [n, m]
        Weights, ``W = w * 2**w_exp``; ``w_shift`` turns ``w @ p`` into the potential format.
    b : int64 [n]
        Biases, ``b = wb * 2**b_exp``; ``b_shift`` turns ``wb`` into the potential format.
    back_shift : int or None
        Turns ``e @ w`` into the error format of the layer below (None for the first layer).
    rule, bias_rule : LearningRuleConstants or None
        Learning-engine form of the weight and bias updates (None without learning).
    tau : TauLearning or None
        Integer tau_m learning (``learning.learn_tau``), see docs/fixed-point.md.
    gain_target, bias_gain_target : float
        The wanted weight and bias gains (LSB per unit of x1*e_q per step).
    pre_bits, pre_signed : int, bool
        Rate format and signedness of the presynaptic payloads (input or layer below).
    """

    name: str
    size: int
    phi: str
    bias: bool
    u_bits: int
    e_bits: int
    rate_bits: int
    rate_signed: bool
    trace_shift: int
    trace_coarsening: int
    consts: X.FixedNeuronConstants
    w: np.ndarray
    w_exp: int
    w_shift: int
    b: np.ndarray
    b_exp: int
    b_shift: int
    back_shift: int | None
    rule: X.LearningRuleConstants | None
    bias_rule: X.LearningRuleConstants | None
    tau: X.TauLearning | None
    pre_bits: int
    pre_signed: bool
    phi_max_error: float
    gain_target: float
    bias_gain_target: float

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
    """

    net: Network
    layers: list[QuantizedLayer]
    in_bits: int
    beta: X.Factor
    beta_negative: bool
    seed: int
    per_synapse_rounding: bool = True

    def quantize_inputs(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Input payloads ``clip(round(x * 2**in_bits), -127, 127)`` and the clip count."""
        return X.to_fixed(x, self.in_bits, *SIGNED_PAYLOAD, what="inputs")

    def quantize_targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """Targets in the output rate format (24-bit signed, clip counted)."""
        return X.to_fixed(y, self.layers[-1].rate_bits, -X.STATE_MAX, X.STATE_MAX,
                          what="targets")

    def manifest(self) -> dict[str, Any]:
        """Formats, exponents and neuron constants per layer, JSON-ready."""
        layers = []
        for q in self.layers:
            c = q.consts
            layers.append({
                "name": q.name, "size": q.size, "phi": q.phi, "bias": q.bias,
                "formats": {"u_bits": q.u_bits, "error_bits": q.e_bits,
                            "rate_bits": q.rate_bits, "rate_signed": q.rate_signed,
                            "error_trace_shift": q.trace_shift,
                            "error_trace_bits": q.e_bits - q.trace_shift,
                            "error_trace_coarsening": q.trace_coarsening},
                "weights": {"exp": q.w_exp, "drive_shift": q.w_shift,
                            "backward_shift": q.back_shift,
                            "pre_rate_bits": q.pre_bits, "pre_signed": q.pre_signed},
                "biases": {"exp": q.b_exp, "drive_shift": q.b_shift},
                "factors": {name: _factor_dict(f) for name, f in (
                    ("dt_over_tau_m", c.dt_m), ("tau_r_over_tau_m", c.tau_r_m),
                    ("dt_over_tau_r", c.dt_r), ("tau_m_over_tau_r", c.tau_m_r))},
                "gamma": None if c.gamma is None else
                dict(_factor_dict(c.gamma), negative=c.gamma_negative),
                "prospective_errors": c.prospective,
                "activation": {"kind": c.phi.kind, "payload_min": c.phi.p_min,
                               "payload_max": c.phi.p_max, "table_bits": c.phi.table_bits,
                               "table_lo": c.phi.table_lo,
                               "table_size": 0 if c.phi.phi_table is None
                               else len(c.phi.phi_table),
                               "linear_above_table": c.phi.linear_above,
                               "table_interpolated": c.phi.interpolate,
                               "gate_bits": X.GATE_BITS,
                               "max_error": q.phi_max_error,
                               "max_error_lsb": q.phi_max_error * 2.0 ** q.rate_bits},
                "learning": None if q.rule is None else {
                    "weights": _rule_dict(q.rule, q.gain_target),
                    "biases": None if q.bias_rule is None
                    else _rule_dict(q.bias_rule, q.bias_gain_target),
                    "tau_m": None if q.tau is None else {
                        "tau_bits": q.tau.tau_bits, "gain": _factor_dict(q.tau.gain),
                        "t_min": q.tau.t_min}},
            })
        return {"format": "lava-gle-fixed-point", "version": 1, "name": self.net.name,
                "state_bits": X.STATE_BITS, "gate_bits": X.GATE_BITS,
                "input": {"size": self.net.input.size, "rate_bits": self.in_bits,
                          "signed": True},
                "output": {"loss": self.net.learning.loss, "beta": _factor_dict(self.beta),
                           "beta_negative": self.beta_negative,
                           "target_rate_bits": self.layers[-1].rate_bits},
                "rounding_seed": self.seed,
                "rounding": "per_synapse" if self.per_synapse_rounding else "shared",
                "layers": layers}

    def arrays(self) -> dict[str, np.ndarray]:
        """Integer arrays: ``W.L``, ``b.L``, ``phi_table.L`` / ``gate_table.L`` (tables only)."""
        out: dict[str, np.ndarray] = {}
        for q in self.layers:
            out[f"W.{q.name}"] = q.w.copy()
            out[f"b.{q.name}"] = q.b.copy()
            if q.consts.phi.phi_table is not None:
                out[f"phi_table.{q.name}"] = q.consts.phi.phi_table.copy()
                out[f"gate_table.{q.name}"] = q.consts.phi.gate_table.copy()
        return out


def _factor_dict(f: X.Factor) -> dict:
    mant = f.mant.tolist()
    return {"mantissa": mant, "shift": f.shift, "value": f.value().tolist()}


def _rule_dict(rule: X.LearningRuleConstants, target: float) -> dict:
    return {"mantissa": rule.mant, "s_exp": rule.s_exp,
            "pre_signed": rule.pre_signed, "overflow_shift": rule.overflow_shift,
            "gain": rule.gain(), "gain_target": target,
            "gain_rel_error": rule.gain() / target - 1.0 if target > 0 else 0.0}


# -- formats ---------------------------------------------------------------------

def _ceil_log2(x: float) -> int:
    return int(math.ceil(math.log2(x)))


def rate_bits_for(r_max: float, signed: bool) -> int:
    """Fraction bits so that ``r_max`` rounded up to a power of two fits the payload."""
    p_max = SIGNED_PAYLOAD[1] if signed else UNSIGNED_PAYLOAD[1]
    r_range = 2.0 ** _ceil_log2(max(r_max, 2.0 ** -16))
    return int(math.floor(math.log2((p_max + 1) / r_range)))


def wide_rate_bits(rate_bits: int, signed: bool) -> int:
    """The output layer's 24-bit rate format: twice the range of the 8-bit format
    ``rate_bits`` (so that targets of exactly +-1 fit a tanh output) and 14 (signed 15)
    fraction bits more."""
    p_max = SIGNED_PAYLOAD[1] if signed else UNSIGNED_PAYLOAD[1]
    return rate_bits + (X.STATE_BITS - 2) - int(math.log2(p_max + 1))


def state_bits_for(bound: float) -> int:
    """Fraction bits of a 24-bit state that holds ``+-bound``."""
    return int(min(23, max(0, 23 - _ceil_log2(max(bound, 2.0 ** -16)))))


def quantize_factor(values, what: str, layer: str, scale: bool = False) -> X.Factor:
    """A Factor with 12-bit mantissas for ``values`` (> 0), common shift.

    Raises QuantizationError when a value is >= 4096 (the mantissa cannot hold it; a
    format conversion, ``scale=True``, then uses a left shift instead) or when a value
    is rounded by more than 1 % (too small next to the largest one).
    """
    v = np.atleast_1d(np.asarray(values, np.float64))
    top = float(v.max())
    if top >= 2 ** X.FACTOR_BITS and not scale:
        raise QuantizationError(f"layer {layer!r}: {what} = {top:g} does not fit the 12-bit "
                                f"factor mantissa (max {2 ** X.FACTOR_BITS - 1}); bring the "
                                "time constants closer together")
    shift = X.factor_shift(top, allow_left=scale)
    mant, _ = X.to_fixed(v, shift, 0, 2 ** X.FACTOR_BITS - 1,
                         what=f"layer {layer!r}: {what}")
    rel = np.abs(mant * 2.0 ** -shift / v - 1.0)
    worst = int(np.argmax(rel))
    if rel[worst] > FACTOR_TOLERANCE:
        raise QuantizationError(f"layer {layer!r}: {what} = {v[worst]:g} (neuron {worst}) is "
                                f"rounded to {mant[worst] * 2.0 ** -shift:g} "
                                f"({100 * rel[worst]:.1f}% off) by the 12-bit factor format; "
                                f"its ratio to the largest value {top:g} is too large")
    return X.Factor(mant if len(mant) > 1 else mant.reshape(()), shift)


#: A leaky integration whose rounding dead zone exceeds this share of its signal warns.
DEAD_ZONE_TOLERANCE = 0.01


def _check_dead_zone(layer: str, what: str, factor: float, bits: int, signal: float,
                     option: str) -> None:
    """Warn when ``x += round(dx * factor)`` ignores differences of a sizeable share of the
    signal: any |dx| below ``0.5 / factor`` LSB rounds to no change at all."""
    dead = 0.5 * 2.0 ** -bits / factor
    if dead > DEAD_ZONE_TOLERANCE * signal:
        warnings.warn(f"layer {layer!r}: with {what} = {factor:.3g} the state stops "
                      f"{dead:.3g} short of its target (rounding dead zone, "
                      f"{100 * dead / signal:.0f}% of the expected signal {signal:.3g}); "
                      f"raise the layer's fixed_point {option}", QuantizationWarning,
                      stacklevel=4)


def _activation(phi: str, u_bits: int, rate_bits: int, signed: bool, wide: bool,
                layer: str) -> tuple[X.FixedActivation, float]:
    """phi of one layer and its largest error (rate units) over the payload range.

    8-bit payloads read a table whose step keeps them exact to the LSB; the 24-bit
    payloads of the output layer (``wide``) interpolate a table with step
    ``2**-WIDE_TABLE_BITS``. Tables of bounded phi hold payloads within range; softplus
    entries beyond it are clipped (and counted) when read.
    """
    if wide:
        p_min, p_max = (-X.STATE_MAX if signed else 0), X.STATE_MAX
    else:
        p_min, p_max = SIGNED_PAYLOAD if signed else UNSIGNED_PAYLOAD
    if phi not in _TABLE_SLOPE:
        act = X.FixedActivation(kind=phi, u_bits=u_bits, rate_bits=rate_bits,
                                p_min=p_min, p_max=p_max)
        lo, hi = -4.0, 4.0
    else:
        k = WIDE_TABLE_BITS if wide else rate_bits + _ceil_log2(_TABLE_SLOPE[phi]) + 1
        k = min(k, u_bits)
        half = math.ceil((max(rate_bits, 0) + 2) * math.log(2.0))
        n = 2 * half * 2 ** k + 1
        if n > MAX_TABLE:
            raise QuantizationError(f"layer {layer!r}: the {phi} table would need {n} entries "
                                    f"(max {MAX_TABLE}); lower rate_bits ({rate_bits})")
        xs = (np.arange(n) - half * 2 ** k) * 2.0 ** -k
        # softplus keeps its entries beyond the payload range (clipped when read)
        table, _ = X.to_fixed(float_phi(phi)(xs), rate_bits,
                              *((p_min, p_max) if phi in BOUNDED_PHI else ()),
                              what=f"layer {layer!r}: {phi} table")
        gates, _ = X.to_fixed(float_phi_prime(phi)(xs), X.GATE_BITS, 0, X.GATE_ONE,
                              what=f"layer {layer!r}: {phi}' table")
        act = X.FixedActivation(kind="table", u_bits=u_bits, rate_bits=rate_bits,
                                p_min=p_min, p_max=p_max, table_bits=k,
                                table_lo=-half * 2 ** k, phi_table=table, gate_table=gates,
                                linear_above=(phi == "softplus"), interpolate=wide)
        lo, hi = -half - 1.0, half + 1.0
    # worst-case error of phi within the payload range, on a grid 8x finer than the table
    # (and at most 2**-16: the interpolated error is smooth between entries)
    step = 2.0 ** -(min(u_bits, max(act.table_bits, rate_bits) + 3, 16))
    u = np.arange(lo, hi, step)
    p, _, _ = act(X.to_fixed(u, u_bits)[0])
    ref = np.clip(float_phi(phi)(u), p_min * 2.0 ** -rate_bits, p_max * 2.0 ** -rate_bits)
    return act, float(np.max(np.abs(p * 2.0 ** -rate_bits - ref)))


def _rules(mants: range, pre_signed: bool) -> list[X.LearningRuleConstants]:
    return [X.LearningRuleConstants(m, e, pre_signed) for m in mants for e in range(1, 16)]


def _closest_rule(gain: float, rules: list[X.LearningRuleConstants]) -> X.LearningRuleConstants:
    return min(rules, key=lambda r: (abs(math.log(r.gain() / gain)), r.s_exp))


def _warn_gain(got: float, wanted: float, layer: str, what: str) -> None:
    if abs(got / wanted - 1.0) > GAIN_TOLERANCE:
        warnings.warn(f"layer {layer!r}: {what} learning gain {wanted:.4g} is approximated "
                      f"by {got:.4g} ({100 * (got / wanted - 1):+.0f}%)", QuantizationWarning,
                      stacklevel=5)


#: Smallest weight-rule gain (LSB per unit of x1*e_q): mantissa 4, s_exp 1.
_MIN_PRECISE_GAIN = X.LearningRuleConstants(4, 1, False).gain()


def _choose_rules(gain: float, bias_gain: float | None, pre_signed: bool,
                  layer: str) -> tuple[X.LearningRuleConstants,
                                              X.LearningRuleConstants | None, int]:
    """Learning-engine constants of a layer's weights and biases, and how many bits
    coarser than its range asks (``error_trace_range`` is the least span) the error
    trace must be.

    ``gain`` and ``bias_gain`` are the wanted LSBs per unit of ``x1 * e_q`` at the trace
    format from ``error_trace_range``. The weight rule takes a mantissa of 4..7, so a
    product keeps at least two bits above the engine's 3-bit floor (its quantum is
    ``8 / mant`` units of x1*e_q): smaller products would be floored to 0 or -1 and, with
    the compensation, become +-1/2 unit by the error's sign alone (sign-SGD). A gain below
    the smallest such rule is reached by a coarser error trace instead (``k`` more bits
    shifted off, the gain per trace unit ``2**k`` larger), which costs no precision on
    average because the trace is stochastically rounded. Returns ``(rule, bias_rule, k)``.
    """
    rules = _rules(range(4, 8), pre_signed)
    floor = _MIN_PRECISE_GAIN * (1 - GAIN_TOLERANCE)
    ks = [0]
    if gain < floor:
        k = math.ceil(math.log2(floor / gain))
        ks = [kk for kk in (k, k + 1) if gain * 2.0 ** kk >= floor]
    k, rule = min(((kk, _closest_rule(gain * 2.0 ** kk, rules)) for kk in ks),
                  key=lambda o: (abs(math.log(o[1].gain() / (gain * 2.0 ** o[0]))), o[0]))
    _warn_gain(rule.gain(), gain * 2.0 ** k, layer, "weight")
    bias_rule = None
    if bias_gain is not None:
        target = bias_gain * 2.0 ** k
        smallest = X.LearningRuleConstants(1, 1, False).gain()
        if target < smallest / 2:
            raise QuantizationError(
                f"layer {layer!r}: the bias learning gain {target:.3g} LSB per unit of x1*e_q "
                f"is below the learning engine's smallest {smallest:.3g}; raise eta or lower "
                "the bias exponent (fixed_point.bias_exp)")
        bias_rule = _closest_rule(target, _rules(range(1, 8), False))
        _warn_gain(bias_rule.gain(), target, layer, "bias")
    return rule, bias_rule, k


#: Factor by which a learned tau_m may outgrow the layer's largest initial one.
TAU_GROWTH = 16.0


def _tau_learning(net: Network, tm: np.ndarray, tr: np.ndarray, e_bits: int, u_bits: int,
                  layer: str) -> X.TauLearning:
    """Formats of integer tau_m learning: T in a 24-bit state that holds ``TAU_GROWTH``
    times the largest initial tau_m, and the gain of ``-e du`` into T units."""
    tau_bits = state_bits_for(TAU_GROWTH * float(max(tm.max(), net.tau_m_min)))
    scale = 2.0 ** tau_bits
    gain = quantize_factor(net.learning.eta_tau / net.dt * 2.0 ** (tau_bits - e_bits - u_bits),
                           "eta_tau / dt", layer, scale=True)
    t_init, _ = X.to_fixed(tm, tau_bits, 0, X.STATE_MAX, what=f"layer {layer!r}: tau_m")
    tau_r_num, _ = X.to_fixed(tr, tau_bits, what=f"layer {layer!r}: tau_r")
    return X.TauLearning(tau_bits=tau_bits, gain=gain, t_init=t_init,
                         t_min=max(1, int(round(net.tau_m_min * scale))),
                         dt_num=int(round(net.dt * scale)), tau_r_num=tau_r_num)


def _weight_exp(w: np.ndarray, headroom: float, floor: float, override: int | None) -> int:
    if override is not None:
        return override
    top = float(np.max(np.abs(w))) if w.size else 0.0
    return _ceil_log2(max(top * headroom, floor, 2.0 ** -16) / 255.0)


def _to_ints(values: np.ndarray, exp: int, layer: str, what: str) -> np.ndarray:
    q, n = X.to_fixed(values, -exp, -255, 255, what=f"layer {layer!r}: {what}")
    if n:
        warnings.warn(f"layer {layer!r}: {n} {what} saturate at exponent {exp} (largest "
                      f"|value| {float(np.max(np.abs(values))):g} > {255 * 2.0 ** exp:g}); "
                      f"raise the layer's fixed_point exponent", QuantizationWarning,
                      stacklevel=3)
    return q


def quantize_network(net: Network) -> QuantizedNetwork:
    """Derive the integer formats, constants and parameters of ``net``.

    Defaults (each overridable under ``fixed_point:``, see :mod:`lava_gle.fixed_options`):
    input payload for ``|x| <= input_range``; weight exponent so that the largest initial
    |W| times ``weight_headroom``, and at least ``weight_range``, fits 8 bits; rate formats from the largest rate the
    initial weights can produce, rounded up to a power of two; 24-bit potential and error
    formats from bounds that include the weight headroom and the prospective overshoot
    ``tau_m / tau_r``; error traces spanning ``|beta| * rate range / 8`` at the output.

    Raises
    ------
    QuantizationError
        For a factor or learning gain the formats cannot hold (names the layer and value).
    MemoryLimitError
        The weights and tables would not fit in the available memory (checked first).
    """
    lrn = net.learning
    opts = net.fixed_point
    headroom = float(opts.get("signal_growth", 8.0))
    learns = lrn.enabled and lrn.eta > 0
    # learned weights may grow; fixed ones are what they are
    w_headroom = float(opts.get("weight_headroom", 2.0 if learns else 1.0))
    in_range = float(opts.get("input_range", 2.0))
    w_floor = float(opts.get("weight_range", 4.0 if learns else 0.0))
    if lrn.loss != "mse":
        raise QuantizationError(f"loss {lrn.loss!r} has no fixed-point form yet (softmax); "
                                "use loss 'mse' for the fixed-point backends")
    if lrn.backward == "feedback_alignment":
        raise QuantizationError("backward 'feedback_alignment' has no fixed-point form yet; "
                                "use backward 'transpose' for the fixed-point backends")
    require_memory(net, "quantize")
    in_bits = rate_bits_for(in_range, True)
    n_layers = len(net.layers)
    weights = [net.initial_weights(i) for i in range(n_layers)]
    biases = [net.initial_biases(i) for i in range(n_layers)]

    # forward pass of bounds: rate formats and potential formats
    r_range_below, pre_bits, pre_signed = in_range, in_bits, True
    fmt = []
    for i, layer in enumerate(net.layers):
        o = layer.fixed_point
        w, b = weights[i], biases[i]
        drive = float(np.max(np.abs(w).sum(axis=1) * r_range_below + np.abs(b)))
        signed = layer.phi in SIGNED_PHI
        if layer.phi in BOUNDED_PHI:
            r_max = r_init = BOUNDED_PHI[layer.phi]
        else:
            # learned weights may grow: half of the headroom's bits go to the rate range
            grown = drive * math.sqrt(headroom)
            r_max = float(np.max(float_phi(layer.phi)(np.array([grown, -grown]))))
            r_init = float(np.max(float_phi(layer.phi)(np.array([drive, -drive]))))
        range_bits = o.get("rate_bits", rate_bits_for(r_max, signed))
        p_max = SIGNED_PAYLOAD[1] if signed else UNSIGNED_PAYLOAD[1]
        wide = i == n_layers - 1
        rate_bits = wide_rate_bits(range_bits, signed) if wide else range_bits
        u_bound = 4.0 * max(drive * headroom, 1.0)
        u_bits = o.get("u_bits", state_bits_for(u_bound))
        fmt.append(dict(rate_bits=rate_bits, range_bits=range_bits, wide=wide, signed=signed,
                        u_bits=u_bits, drive=drive, pre_bits=pre_bits, pre_signed=pre_signed))
        r_range_below = min(r_init, p_max * 2.0 ** -rate_bits)
        pre_bits, pre_signed = rate_bits, signed

    # backward pass of bounds: error formats and error traces
    top = fmt[-1]
    r_range_top = (SIGNED_PAYLOAD[1] if top["signed"] else UNSIGNED_PAYLOAD[1]) \
        * 2.0 ** -top["range_bits"]
    # beta 0 forms no output error: any error format will do, size it as for beta 1
    beta_scale = abs(lrn.beta) if lrn.beta != 0 else 1.0
    d_bound = beta_scale * 2.0 * r_range_top
    trace_range = beta_scale * r_range_top / 8.0
    for i in reversed(range(n_layers)):
        layer = net.layers[i]
        overshoot = 1.0
        if lrn.prospective_errors:
            overshoot += float(np.max(layer.tau_m_array() / layer.tau_r_array()))
        e_bound = max(d_bound * overshoot, 2.0 ** -16)
        fmt[i]["e_bits"] = layer.fixed_point.get("error_bits", state_bits_for(e_bound))
        fmt[i]["e_bound"] = e_bound / overshoot
        fmt[i]["trace_range"] = layer.fixed_point.get("error_trace_range", trace_range)
        col = np.abs(weights[i]).sum(axis=0)
        d_bound = e_bound * float(col.max()) * headroom
        trace_range = fmt[i]["trace_range"] * max(float(col.max()), 2.0 ** -8) \
            * math.sqrt(headroom)

    layers = []
    for i, layer in enumerate(net.layers):
        f, o = fmt[i], layer.fixed_point
        tm, tr = layer.tau_m_array(), layer.tau_r_array()
        name = layer.name
        e_bits, u_bits = f["e_bits"], f["u_bits"]
        gamma = None
        if lrn.gamma != 0.0:
            gamma = quantize_factor(abs(lrn.gamma) * 2.0 ** (u_bits - e_bits), "gamma", name,
                                    scale=True)
        act, phi_err = _activation(layer.phi, u_bits, f["rate_bits"], f["signed"], f["wide"],
                                   name)
        consts = X.FixedNeuronConstants(
            dt_m=quantize_factor(net.dt / tm, "dt/tau_m", name),
            tau_r_m=quantize_factor(tr / tm, "tau_r/tau_m", name),
            dt_r=quantize_factor(net.dt / tr, "dt/tau_r", name),
            tau_m_r=quantize_factor(tm / tr, "tau_m/tau_r", name),
            gamma=gamma, gamma_negative=lrn.gamma < 0,
            prospective=lrn.prospective_errors, phi=act)
        _check_dead_zone(name, "dt/tau_m", float(np.min(net.dt / tm)), u_bits,
                         max(f["drive"], 2.0 ** -u_bits), "u_bits")
        if lrn.prospective_errors:
            _check_dead_zone(name, "dt/tau_r", float(np.min(net.dt / tr)), e_bits,
                             f["e_bound"], "error_bits")
        tau = None
        if lrn.enabled and lrn.learn_tau and lrn.eta_tau > 0:
            tau = _tau_learning(net, tm, tr, e_bits, u_bits, name)
            consts = X.tau_constants(consts, tau.t_init, tau)
        w_exp = _weight_exp(weights[i], w_headroom, w_floor, o.get("weight_exp"))
        w = _to_ints(weights[i], w_exp, name, "weights")
        b_exp = o.get("bias_exp")
        if b_exp is None:
            b_exp = _weight_exp(biases[i], w_headroom, w_floor / 4.0, None) if layer.bias \
                else w_exp
        b = _to_ints(biases[i], b_exp, name, "biases")
        y_bits = int(math.floor(math.log2(X.ERR_TRACE_MAX / f["trace_range"])))
        gain = lrn.eta * 2.0 ** (1 - f["pre_bits"]) * 2.0 ** -y_bits / 2.0 ** w_exp
        bias_gain = lrn.eta * 2.0 ** -y_bits / 2.0 ** b_exp / 127.0
        rule = bias_rule = None
        coarser = 0
        if learns:
            rule, bias_rule, coarser = _choose_rules(
                gain, bias_gain if layer.bias else None, f["pre_signed"], name)
            y_bits -= coarser
            gain, bias_gain = gain * 2.0 ** coarser, bias_gain * 2.0 ** coarser
        trace_shift = e_bits - y_bits
        if rule is not None and trace_shift >= X.STATE_BITS:
            raise QuantizationError(
                f"layer {name!r}: the learning gain of eta {lrn.eta:g} is too small for the "
                f"learning engine: even an error trace whose LSB is the whole {X.STATE_BITS}"
                f"-bit error range ({trace_shift - X.STATE_BITS + 1} bits short) gives less "
                f"than its smallest precise gain {_MIN_PRECISE_GAIN:.3g} LSB per unit of "
                "x1*e_q; raise eta or lower the weight exponent")
        if trace_shift < 0:
            raise QuantizationError(f"layer {name!r}: error_trace_range {f['trace_range']:g} "
                                    f"needs {y_bits} trace fraction bits, more than the error "
                                    f"format's {e_bits}; raise error_bits or the range")
        back_shift = None
        if i > 0:
            back_shift = w_exp - e_bits + fmt[i - 1]["e_bits"]
        layers.append(QuantizedLayer(
            name=name, size=layer.size, phi=layer.phi, bias=layer.bias,
            u_bits=u_bits, e_bits=e_bits, rate_bits=f["rate_bits"], rate_signed=f["signed"],
            trace_shift=trace_shift, trace_coarsening=coarser, consts=consts, w=w, w_exp=w_exp,
            w_shift=w_exp - f["pre_bits"] + u_bits, b=b, b_exp=b_exp, b_shift=b_exp + u_bits,
            back_shift=back_shift, rule=rule, bias_rule=bias_rule, tau=tau,
            pre_bits=f["pre_bits"],
            pre_signed=f["pre_signed"], phi_max_error=phi_err, gain_target=gain,
            bias_gain_target=bias_gain))
    top_q = layers[-1]
    beta = quantize_factor(max(abs(lrn.beta), 1e-300) * 2.0 ** (top_q.e_bits - top_q.rate_bits),
                           "beta", top_q.name, scale=True) if lrn.beta != 0 else X.Factor(np.array(0), 0)
    return QuantizedNetwork(net=net, layers=layers, in_bits=in_bits, beta=beta,
                            beta_negative=lrn.beta < 0, seed=int(opts.get("seed", 0)),
                            per_synapse_rounding=opts.get("rounding", "per_synapse")
                            == "per_synapse")
