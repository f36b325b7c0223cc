"""Hardware profiles: shipped data files with sources, user overrides, clear errors."""
from __future__ import annotations

import json

import pytest

from lava_gle.mappings.profiles import (
    CONFIDENCES, FIELDS, ProfileError, available_profiles, load_profile,
)


def test_shipped_profiles_carry_every_number_with_source_and_confidence():
    assert {"loihi2", "kapoho_point", "loihi1"} <= set(available_profiles())
    for name in ("loihi2", "kapoho_point", "loihi1"):
        p = load_profile(name)
        assert set(p.numbers) == set(FIELDS)
        for key, number in p.numbers.items():
            assert number.source.strip(), (name, key)
            assert number.confidence in CONFIDENCES, (name, key)


def test_loihi2_numbers_from_the_fact_sheet():
    p = load_profile()
    assert p.name == "loihi2"
    assert p.synapse_words_per_core == 12000
    assert p.numbers["synapse_words_per_core"].confidence == "primary"
    assert p.cores_per_chip == 128 and p.max_chips is None
    assert p.synapse_word_bits == 32


def test_kapoho_point_inherits_loihi2_and_has_eight_chips():
    kp, l2 = load_profile("kapoho_point"), load_profile("loihi2")
    assert kp.max_chips == 8
    assert kp.compartments_per_core == l2.compartments_per_core
    assert kp.numbers["input_axons_per_core"] == l2.numbers["input_axons_per_core"]


def test_loihi1_reference_numbers():
    p = load_profile("loihi1")
    assert (p.compartments_per_core, p.input_axons_per_core, p.output_axons_per_core) == \
        (1024, 4096, 4096)
    assert p.synapse_words_per_core * p.synapse_word_bits == 128 * 1024 * 8


def test_user_profile_overrides_any_number(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\nbase: loihi2\nvalues:\n  synapse_words_per_core: 6000\n"
                 "  cores_per_chip: {value: 120, source: Hala Point ratio, confidence: inferred}\n")
    p = load_profile(f)
    assert p.name == "mine"
    assert p.synapse_words_per_core == 6000
    assert p.numbers["synapse_words_per_core"].confidence == "user"
    assert str(f) in p.numbers["synapse_words_per_core"].source
    assert p.numbers["cores_per_chip"].source == "Hala Point ratio"
    assert p.input_axons_per_core == 16000  # inherited


def test_json_profile_without_base_needs_every_number(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"name": "x", "values": {"cores_per_chip": 4}}))
    with pytest.raises(ProfileError, match=r"values\.\w+: missing"):
        load_profile(f)


@pytest.mark.parametrize("body, match", [
    ("base: loihi2\nvalues:\n  synapse_words: 5\n", r"values\.synapse_words: unknown number"),
    ("base: loihi2\nvalues:\n  cores_per_chip: -3\n", r"values\.cores_per_chip: must be a positive"),
    ("base: loihi2\nvalues:\n  cores_per_chip: 2.5\n", r"positive integer"),
    ("base: loihi2\nvalues:\n  cores_per_chip: null\n", r"positive integer, got None"),
    ("base: loihi2\nvalues:\n  max_chips: {value: 4, confidence: sure}\n", r"confidence: must be"),
    ("base: nothere\n", r"unknown profile 'nothere'"),
    ("- 1\n- 2\n", r"must be a mapping"),
    ("base: loihi2\ncolour: red\n", r"unknown key 'colour'"),
])
def test_bad_profiles_name_the_field(tmp_path, body, match):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(ProfileError, match=match):
        load_profile(f)


def test_base_cycle_is_reported(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"base: {b}\n")
    b.write_text(f"base: {a}\n")
    with pytest.raises(ProfileError, match="cycle"):
        load_profile(a)


def test_unknown_name_lists_the_shipped_profiles():
    with pytest.raises(ProfileError, match="loihi2"):
        load_profile("loihi3")


def test_with_values_and_to_dict_round_trip_the_numbers():
    p = load_profile().with_values(max_chips=2)
    d = p.to_dict()
    assert d["values"]["max_chips"] == {"value": 2, "source": "override", "confidence": "user"}
    assert d["values"]["synapse_words_per_core"]["value"] == 12000
