"""The integer arithmetic's fingerprint, recorded in fixed-point checkpoints."""
import pytest

from lava_gle.numerics import fingerprint, ops

#: The fingerprint of today's integer arithmetic. It must be the same on every CPU (integer
#: steps). When a change of the arithmetic (or of the saturation counters a run records)
#: is meant, put the new value here: checkpoints of fixed-point runs written before are
#: then refused as different runs.
FINGERPRINT = "01a5e90d90e596b0"


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


def test_8_bit_gained_payloads_give_the_integers_of_before_back(fresh, monkeypatch):
    """Gained payloads became 16 bits wide on 2026-12-02 (``gain_payload_bits``); at the
    former default of 8 the fingerprint is the integers of before: ``43dc8af6b9c5eb54``
    then, ``b0d7b5e7889e0795`` since the learning accumulator's clips are counted too
    (``sat.lacc.<layer>``, a counter more in the trace; hashed without those counters the
    two fingerprints are still ``43dc8af6b9c5eb54`` and ``53d24677dfcfac95``)."""
    from lava_gle.quantize import network
    monkeypatch.setattr(network, "DEFAULT_GAIN_PAYLOAD_BITS", 8)
    assert fresh() == "b0d7b5e7889e0795"
