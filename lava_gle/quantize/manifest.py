"""The JSON manifest and the integer arrays of a quantised network (a deployment bundle)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lava_gle.numerics import fixed as X

if TYPE_CHECKING:
    from lava_gle.quantize.network import QuantizedLayer, QuantizedNetwork


def manifest(qnet: QuantizedNetwork) -> dict[str, Any]:
    """Formats, exponents and neuron constants per layer, JSON-ready."""
    net = qnet.net
    return {"format": "lava-gle-fixed-point", "version": 1, "name": net.name,
            "state_bits": X.STATE_BITS, "gate_bits": X.GATE_BITS,
            "input": {"size": net.input.size, "rate_bits": qnet.in_bits, "signed": True},
            "output": {"loss": net.learning.loss, "beta": _factor_dict(qnet.beta),
                       "beta_negative": qnet.beta_negative,
                       "target_rate_bits": qnet.layers[-1].rate_bits},
            "rounding_seed": qnet.seed,
            "rounding": "per_synapse" if qnet.per_synapse_rounding else "shared",
            "timing": "chip" if qnet.chip_timing else "exact",
            "backward_rounding": ("mirrored" if qnet.mirrored_backward_rounding
                                  else "independent"),
            "product_bits": qnet.product_bits, "accumulator_bits": qnet.acc_bits,
            "layers": [_layer(q) for q in qnet.layers]}


def arrays(qnet: QuantizedNetwork) -> dict[str, np.ndarray]:
    """Integer arrays: ``W.L``, ``b.L`` and, where a layer's normalisers start from a
    described state, ``gain_ms.L`` / ``error_ms.L`` (running mean squares, squared LSBs of
    the 24-bit rate / error) and ``norm_steps.L`` (updates so far, a 0-d array). The
    activations' few constants are in the manifest."""
    out: dict[str, np.ndarray] = {}
    for q in qnet.layers:
        out[f"W.{q.name}"] = q.w.copy()
        out[f"b.{q.name}"] = q.b.copy()
        for kind, values in (q.norm_state or {}).items():
            out[f"{kind}.{q.name}"] = np.asarray(values, np.int64).copy()
    return out


def _layer(q: QuantizedLayer) -> dict[str, Any]:
    c = q.consts
    return {
        "name": q.name, "size": q.size, "phi": q.phi, "bias": q.bias,
        "formats": {"u_bits": q.u_bits, "error_bits": q.e_bits,
                    "rate_bits": q.rate_bits, "rate_signed": q.rate_signed,
                    **_error_trace(q),
                    "error_trace_coarsening": q.trace_coarsening,
                    "pre_trace_coarsening": q.pre_trace_coarsening,
                    # the layer's error_bound in error LSB (only where it has one)
                    **({} if c.e_max is None else {"error_max": c.e_max})},
        "weights": {"exp": q.w_exp, "drive_shift": q.w_shift, "backward_shift": q.back_shift,
                    "pre_rate_bits": q.pre_bits, "pre_signed": q.pre_signed},
        "biases": {"exp": q.b_exp, "drive_shift": q.b_shift},
        "factors": {name: _factor_dict(f) for name, f in (
            ("dt_over_tau_m", c.dt_m), ("tau_r_over_tau_m", c.tau_r_m),
            ("dt_over_tau_r", c.dt_r), ("tau_m_over_tau_r", c.tau_m_r))},
        "gamma": None if c.gamma is None else
        dict(_factor_dict(c.gamma), negative=c.gamma_negative, du_max=c.du_max),
        "prospective_errors": c.prospective,
        "activation": {"kind": c.phi.kind, "payload_min": c.phi.p_min,
                       "payload_max": c.phi.p_max,
                       "segments": _segments_dict(c.phi.segments),
                       "gate_segments": _segments_dict(c.phi.gate_segments),
                       "gate_bits": X.GATE_BITS,
                       "max_error": q.phi_max_error,
                       "max_error_lsb": q.phi_max_error * 2.0 ** q.rate_bits},
        "normalisers": _normalisers(q),
        "learning": None if q.rule is None else {
            "weights": _rule_dict(q.rule, q.gain_target),
            "biases": None if q.bias_rule is None
            else _rule_dict(q.bias_rule, q.bias_gain_target),
            "tau_m": None if q.tau is None else {
                "tau_bits": q.tau.tau_bits, "gain": _factor_dict(q.tau.gain),
                "t_min": q.tau.t_min}},
    }


def _error_trace(q: QuantizedLayer) -> dict[str, Any]:
    """The learning's error trace ``(mantissa value + dither) >> shift``: what it is taken
    from (the error, or with an error normaliser the normalised error ``nu e``), its
    mantissa (1, or 9..15: :func:`~lava_gle.numerics.fixed.error_trace`) and shift off
    that value's format, ``error_trace_bits`` (its LSB is ``2**-bits / mantissa`` of the
    value's unit), and ``learning_clip``: the largest |value| it holds (31 trace LSBs under
    exact learning products, else 63; None without a rule) beyond which the rule learns
    from the clipped value."""
    normalised = q.norm is not None and q.norm.error_shift is not None
    bits = (X.NORM_FRAC if normalised else q.e_bits) - q.trace_shift
    top = None if q.rule is None else (X.ERR_TRACE_MAX // 2 if q.rule.exact
                                       else X.ERR_TRACE_MAX)
    return {"error_trace_source": "normalised_error" if normalised else "error",
            "error_trace_mantissa": q.trace_mant,
            "error_trace_shift": q.trace_shift, "error_trace_bits": bits,
            "learning_clip": None if top is None else top * 2.0 ** -bits / q.trace_mant}


def _normalisers(q: QuantizedLayer) -> dict[str, Any] | None:
    """The layer's neuron-local normalisers in integers (``docs/fixed-point.md``,
    "Neuron-local normalisers in integers"; None without): the mean squares' decay shifts
    (None where the layer lacks that normaliser), the gains' factor ``gamma = g
    2**gain_frac`` (``round(2**gain_k / sqrt(ms))``, at most ``gain_max``), the gained
    payload's format and the error normaliser's ``nu`` (``norm_shift``, at most
    ``norm_max``). A described state is among the arrays (:func:`arrays`)."""
    f = q.norm
    if f is None:
        return None
    return {"gain_decay_shift": f.gain_shift, "error_decay_shift": f.error_shift,
            "gain_frac": X.GAIN_FRAC, "gain_k": f.gain_k, "gain_max": f.gain_max,
            "payload_bits": f.payload_frac, "payload_shift": f.payload_shift,
            "learning_payload_bits": f.q_bits, "norm_frac": X.NORM_FRAC,
            "norm_shift": f.norm_shift, "norm_max": f.norm_max, "nu_bits": X.NU_BITS}


def _segments_dict(s: X.Segments | None) -> dict | None:
    if s is None:
        return None
    return {"starts": s.starts.tolist(), "coefficients": s.coefs.tolist(), "bits": s.bits,
            "shift": s.shift, "t_shift": s.t_shift, "degree": s.degree, "constants": s.constants(),
            "tolerance": s.tol, "product_bits": s.product_bits()}


def _factor_dict(f: X.Factor) -> dict:
    return {"mantissa": f.mant.tolist(), "shift": f.shift, "value": f.value().tolist()}


def _rule_dict(rule: X.LearningRuleConstants, target: float) -> dict:
    gain = rule.gain()
    return {"mantissa": rule.mant, "s_exp": rule.s_exp,
            "pre_signed": rule.pre_signed, "overflow_shift": rule.overflow_shift,
            "exact": rule.exact, "gain": gain, "gain_target": target,
            "gain_rel_error": gain / target - 1.0 if target > 0 else 0.0,
            **({"payload": rule.payload, "x1": rule.x1} if isinstance(rule, X.BiasRule)
               else {})}
