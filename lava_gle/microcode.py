"""GLE's local plasticity as Loihi learning-engine microcode (Lava rule strings).

The update of every projection, ``dW_ij = eta * e_i * r_j`` (and ``db_i = eta * e_i``,
and the same update on the backward array that carries ``W^T``), is written as a
:class:`~lava.magma.core.learning.learning_rule.Loihi3FLearningRule` string and
compiled by Lava into its product series. The integer synapse update of
:func:`lava_gle.numerics.fixed.learning_accumulator` is that product series evaluated
the way Lava's fixed-point learning engine does (``tests/test_microcode.py`` checks it
against Lava's own applier and a running ``LearningDense``).

Signals (``docs/fixed-point.md``, "Learning"):

- forward array: presynaptic rate payload ``p`` (GradedSpikeCfg.OVERWRITE, 8 message
  bits) gives ``x1 = p / 2``; signed rates are sent as ``p + 128`` and read as ``x1 - 64``.
  The postsynaptic neuron sends its error trace, stochastically rounded, split
  ``y2 = e_q+``, ``y3 = e_q-``, and the bAP ``y0 = (e_q != 0)``; under exact rules the
  trace may carry a 4-bit mantissa, ``e_q = (m e + dither) >> shift``, which meets a weight
  gain between powers of two (``QuantizedLayer.trace_mant``).
- bias array: a bias neuron with a constant payload into each neuron: 254 (``x1 = 127``)
  under compensated rules; under exact rules 128 (``x1 = 64``), halved down to 8 where the
  biases learn more slowly than the least rule on 128 allows (``BiasRule.payload``).
- backward array (transpose mode, layers above the first): presynaptic error payload
  ``2 (e_q + 64)`` (``x1 - 64 = e_q``; payload 0 when ``e_q == 0``), postsynaptic rate
  trace ``y2`` (``y2 - 64`` when signed) and bAP ``y0 = (p != 0)``: the same products as
  the forward array, so both copies receive identical updates (with a shared random
  stream for the stochastic rounding). Under chip timing the backward array runs this
  rule one step after the forward one, on the lower layer's rate of the matching step
  (a delayed rate trace), with its own random numbers (``docs/fixed-point.md``, "Chip
  timing").
"""
from __future__ import annotations

from typing import Any

from lava_gle.numerics.fixed import ACC_FRAC, LearningRuleConstants
from lava_gle.quantize import QuantizedNetwork


def _scale(mant: int, s_exp: int) -> str:
    return f"{mant}*2^{s_exp - ACC_FRAC}" if mant != 1 else f"2^{s_exp - ACC_FRAC}"


def rule_string(rule: LearningRuleConstants, backward: bool = False,
                post_signed: bool = False) -> str:
    """The ``dw`` string of a projection's rule.

    Forward/bias arrays: ``S*x0*X*y2 - S*x0*X*y3 + 2^(s_exp-8)*x0*y0`` with ``X = x1``
    or ``(x1-64)`` (signed presynaptic payload). Backward array (``backward=True``):
    ``S*x0*(x1-64)*Y + 2^(s_exp-8)*x0*y0`` with ``Y = y2`` or ``(y2-64)`` (signed rates
    of the postsynaptic layer).
    """
    s = _scale(rule.mant, rule.s_exp)
    comp = "" if rule.exact else f" + 2^{rule.s_exp - 1 - ACC_FRAC}*x0*y0"
    if backward:
        post = "(y2-64)" if post_signed else "y2"
        return f"{s}*x0*(x1-64)*{post}{comp}"
    pre = "(x1-64)" if rule.pre_signed else "x1"
    return f"{s}*x0*{pre}*y2 - {s}*x0*{pre}*y3{comp}"


def tag_rule_strings(rule: LearningRuleConstants, bits: int, backward: bool = False,
                     post_signed: bool = False) -> tuple[str, str]:
    """``(dw, dt)`` of an array whose synaptic tag ``t`` holds ``bits``
    (:data:`~lava_gle.numerics.fixed.TAG_BITS`) low-order bits of its weight
    (:func:`~lava_gle.numerics.fixed.carry_tags`, ``fixed_point.weight_tag_bits``): a forward
    or bias array, or (``backward``, ``post_signed`` as for :func:`rule_string`) the
    backward array, which keeps tags of its own and carries them the same way.

    Both start with the unconditional carry ``c = floor((t + 2**(bits-1)) / 2**bits)``: the
    product ``(t+C)*sgn(t+512)`` (``sgn`` is +1 on the whole tag range) has factor widths
    9 + 9 + 4, so the engine floors it by 2**7, after the mantissa ``2**(7-bits)``. ``dw``
    adds ``c`` whole LSBs; ``dt`` removes ``c * 2**bits`` with ``sgn(t-512) = -1`` inside
    the floor (hence the constant ``1 - 2**(bits-1)``), then adds the products of
    :func:`rule_string` (``rule`` in tag units, as :func:`~lava_gle.quantize.
    quantize_network` makes it for a layer with tags; the backward array uses its layer's
    forward rule constants).
    """
    mant, half = 1 << (7 - bits), 1 << (bits - 1)
    dw = f"{mant}*2^0*u0*(t+{half})*sgn(t+512)"
    dt = (f"{mant}*2^{bits}*u0*(t-{half - 1})*sgn(t-512) + "
          f"{rule_string(rule, backward, post_signed)}")
    return dw, dt


#: Seed of the random numbers of Lava's learning rules (trace rounding). Given, because
#: without one Lava draws it from NumPy's global random state: a rule's traces then round
#: differently with whatever ran before, and building a rule advances that state.
LAVA_RULE_SEED = 1


def compile_rule(dw: str):
    """Lava's Loihi3FLearningRule for ``dw`` (t_epoch 1, x1 overwritten by graded payloads,
    the trace rounding's seed :data:`LAVA_RULE_SEED`)."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    return Loihi3FLearningRule(dw=dw, x1_impulse=0, x1_tau=2 ** 16 - 1, t_epoch=1,
                               rng_seed=LAVA_RULE_SEED)


def _entry(dw: str, rule: LearningRuleConstants, signals: dict[str, str],
           t_epoch: int) -> dict[str, Any]:
    lr = compile_rule(dw)
    out = {"dw": dw, "product_series": str(lr.dw).strip(), "t_epoch": t_epoch,
           "x1_tau": 2 ** 16 - 1, "x1_impulse": 0, "graded_spike_cfg": "OVERWRITE",
           "num_message_bits": 8, "gain": rule.gain(), "signals": signals}
    if t_epoch > 1:
        out["epoch"] = (f"one epoch every {t_epoch} steps (learning.epoch_steps): the "
                        "traces carry, at the epoch's last step, the presynaptic payloads' "
                        "mean over the epoch and the postsynaptic learning error summed in "
                        "the neurons' 24-bit state over it")
    return out


def learning_rules(qnet: QuantizedNetwork) -> dict[str, dict[str, Any]]:
    """Per layer: ``weights``, ``biases`` and ``backward_weights`` rules (None where absent).

    Each rule is a dict with the Lava ``dw`` string, the ``product_series`` Lava compiles
    it to, the LearningDense settings (``t_epoch``: ``learning.epoch_steps``, with an
    ``epoch`` note of what the traces then carry) and what each trace carries; with weight tags
    (``tag_bits``) every array of the layer (forward, bias and backward) has the carry as its
    ``dw`` and the tag's ``dt`` (:func:`tag_rule_strings`).
    """
    out: dict[str, dict[str, Any]] = {}
    t_epoch = 1 << qnet.epoch_shift
    for i, q in enumerate(qnet.layers):
        if q.rule is None:
            out[q.name] = {"weights": None, "biases": None, "backward_weights": None}
            continue
        pre = "input" if i == 0 else qnet.layers[i - 1].name
        x1 = (f"rate payload of {pre} / 2" + (" (sent as p + 128)" if q.pre_signed else "")
              if not q.pre_trace_coarsening else
              f"learning payload of {pre}: its rate {q.pre_trace_coarsening} bits coarser, "
              "dithered (fixed.pre_trace)")
        y = "2 e_q" if q.rule.exact else "e_q"  # exact rules: the doubled error trace
        if q.trace_mant != 1:  # a gain between powers of two
            y += f" (e_q = ({q.trace_mant} e + dither) >> {q.trace_shift})"
        fwd_signals = {"x1": x1,
                       "y2": f"error trace {y}+ of {q.name}", "y3": f"error trace {y}- of "
                       f"{q.name}", "y0": f"bAP of {q.name}: e_q != 0"}
        entry = {"weights": _entry(rule_string(q.rule), q.rule, fwd_signals, t_epoch),
                 "biases": None, "backward_weights": None}
        if q.bias_rule is not None:
            sig = dict(fwd_signals, x1=f"bias neuron, constant payload {q.bias_rule.payload} "
                                       f"(x1 = {q.bias_rule.x1})")
            entry["biases"] = _entry(rule_string(q.bias_rule), q.bias_rule, sig, t_epoch)
        if i > 0:
            below = qnet.layers[i - 1]
            sig = {"x1": f"error payload 2 ({y} + 64) of {q.name} (0 when e_q == 0)",
                   "y2": f"rate trace x1 of {below.name}", "y0": f"bAP of {below.name}: p != 0"}
            entry["backward_weights"] = _entry(
                rule_string(q.rule, backward=True, post_signed=below.rate_signed), q.rule, sig,
                t_epoch)
        if q.tag_bits:  # the rules move the tags (gain in tag LSB); the weights take the carry
            below_signed = i > 0 and qnet.layers[i - 1].rate_signed
            for key, r, back in (("weights", q.rule, False), ("biases", q.bias_rule, False),
                                 ("backward_weights", q.rule, True)):
                if entry[key] is not None:
                    dw, dt = tag_rule_strings(r, q.tag_bits, back, back and below_signed)
                    entry[key].update(dw=dw, dt=dt, tag_bits=q.tag_bits,
                                      product_series=str(compile_rule(dw).dw).strip())
        out[q.name] = entry
    return out
