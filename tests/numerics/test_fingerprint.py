"""The fingerprints of integer arithmetic: the whole arithmetic's, which fixed-point
checkpoints recorded before session 48, and a run's continuation, which they record now."""
import pytest

from lava_gle.numerics import fingerprint, ops

#: The fingerprint of today's integer arithmetic. It must be the same on every CPU (integer
#: steps). When a change of the arithmetic (or of the saturation counters a run records)
#: is meant, put the new value here: fixed-point checkpoints written before session 48,
#: which record this fingerprint and not their run's continuation, are then refused.
FINGERPRINT = "203b0cda70efd51f"


@pytest.fixture
def fresh():
    fingerprint.fixed_arithmetic.cache_clear()
    yield fingerprint.fixed_arithmetic
    fingerprint.fixed_arithmetic.cache_clear()


def test_the_fingerprint_is_the_integer_arithmetics_on_any_cpu(fresh):
    assert fresh() == FINGERPRINT


def _mutations(ops_module):
    backward, inverse_rms, carry = (ops_module.backward_error, ops_module.inverse_rms,
                                    ops_module.carry_tags)

    def backward_error(*args):
        eps, *counts = backward(*args)
        return (eps + 1, *counts)

    def carry_tags(w, tag, bits):
        clipped = carry(w, tag, bits)
        tag += 1  # in place, as the primitive works
        return clipped

    return {"backward_error": backward_error, "carry_tags": carry_tags,
            "inverse_rms": lambda *args: inverse_rms(*args) + 1}


@pytest.mark.parametrize("primitive", ["backward_error", "inverse_rms", "carry_tags"])
def test_the_fingerprint_changes_with_any_primitive(fresh, monkeypatch, primitive):
    """One LSB more in the error sent down, the gains or the tags is another arithmetic
    (and so the normalisers and tags are in the fingerprint's networks)."""
    monkeypatch.setattr(ops, primitive, _mutations(ops)[primitive])
    assert fresh() != FINGERPRINT


def test_the_fingerprint_changes_with_the_default_learning_rule(fresh, monkeypatch):
    """A description that names no ``learning_products`` learns with the default: a run
    checkpointed under the other default is another arithmetic."""
    from lava_gle.quantize import network
    monkeypatch.setattr(network, "DEFAULT_LEARNING_PRODUCTS", "compensated")
    assert fresh() != FINGERPRINT


def test_the_fingerprint_changes_with_the_bias_payloads(fresh, monkeypatch):
    """A bias learns from its bias neuron's payload, which the quantiser narrows where no
    rule on the widest meets the bias gain (session 43; the fingerprint's layer ``g``):
    the rule of before, the widest payload only, is another arithmetic."""
    from lava_gle.numerics import fixed
    monkeypatch.setattr(fixed, "BIAS_PAYLOADS_EXACT", fixed.BIAS_PAYLOADS_EXACT[:1])
    assert fresh() != FINGERPRINT


def test_8_bit_gained_payloads_are_another_arithmetic(fresh, monkeypatch):
    """Gained payloads became 16 bits wide on 2026-12-02 (``gain_payload_bits``); the
    former default of 8 is another arithmetic. Its fingerprint gave the integers of before
    back (``43dc8af6b9c5eb54``, then ``b0d7b5e7889e0795`` with the learning accumulator's
    clips counted, ``sat.lacc.<layer>``) until session 43 gave the fingerprint's layer
    ``g`` a narrower bias payload, which no earlier version had (``b0be6602b7cb130d``),
    and session 44 scaled error traces (and layer ``g`` a coarser bias format, so that
    its payload stays narrowed on the scaled trace)."""
    from lava_gle.quantize import network
    monkeypatch.setattr(network, "DEFAULT_GAIN_PAYLOAD_BITS", 8)
    assert fresh() == "1bc01ba6a351a3a5"


def test_the_fingerprint_changes_with_the_error_traces_mantissa(fresh, monkeypatch):
    """An exact weight gain between powers of two is met by the error trace's mantissa
    (session 44; the fingerprint's networks have such gains): the rule of before, the
    nearest power of two on an unscaled trace, is another arithmetic. (On the networks of
    before it gave their fingerprint back, ``2b5011cc4ebed5f1``: nothing else changed.)"""
    from lava_gle.quantize import rules
    monkeypatch.setattr(rules, "_weight_rule",
                        lambda gain, candidates, exact: (rules._closest_rule(gain, candidates), 1))
    assert fresh() != FINGERPRINT


def _learning_engine():
    """The first fingerprint network in integers after 5 learning steps."""
    import warnings

    import numpy as np

    from lava_gle.description import network_from_dict
    from lava_gle.numerics.engine import FixedEngine
    from lava_gle.quantize import QuantizationWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = FixedEngine(network_from_dict(fingerprint._spec("exact", None, True)))
        rng = np.random.default_rng(5)
        engine.run(rng.uniform(-1, 1, (5, 2, 3)), rng.uniform(0, 1, (5, 2, 2)))
    return engine


def test_a_runs_continuation_leaves_the_run_alone_and_ignores_the_epochs_rate():
    """The continuation runs a copy (the engine's state is untouched and gives the same
    digest again), at the description's own eta (an epoch schedule's rate does not
    enter), and is another digest one step later."""
    import numpy as np

    from lava_gle.quantize import QuantizationWarning
    engine = _learning_engine()
    before = engine.state_dict()
    digest = fingerprint.continuation(engine)
    after = engine.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)
    with pytest.warns(QuantizationWarning):  # the rules re-derived warn of the gain cap
        engine.kernels.set_eta(engine.net.learning.eta / 4)
    assert fingerprint.continuation(engine) == digest
    with pytest.warns(QuantizationWarning, match="saturation"):
        engine.run(np.zeros((1, 2, 3)))
    assert fingerprint.continuation(engine) != digest


def test_a_runs_continuation_changes_with_a_primitive_it_uses(monkeypatch):
    engine = _learning_engine()
    digest = fingerprint.continuation(engine)
    monkeypatch.setattr(ops, "backward_error", _mutations(ops)["backward_error"])
    assert fingerprint.continuation(engine) != digest
