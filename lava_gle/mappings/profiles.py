"""Hardware profiles: per-core limits, chip and system sizes, default payload widths.

A profile is a data file (YAML or JSON) under ``lava_gle/profiles/`` or anywhere on
disk. Each number is ``{value, source, confidence}``; a user profile may name a ``base``
profile and override any subset of numbers, given either in that form or as a bare
number (its source is then the user's file). See ``docs/mapping.md``.

Confidence levels: ``primary`` (Intel output or paper, Lava source), ``secondary`` (press
quoting Intel), ``inferred`` (our arithmetic from primary numbers), ``assumed`` (no public
number), ``user`` (a user's own profile without a stated confidence).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lava_gle.description import load_document
from lava_gle.counts import is_count
from lava_gle.errors import LavaGleError

#: Directory of the profiles shipped with lava-gle.
PROFILE_DIR = Path(__file__).resolve().parent.parent / "profiles"
#: Profile used when none is given.
DEFAULT_PROFILE = "loihi2"
CONFIDENCES = ("primary", "secondary", "inferred", "assumed", "user")

#: Every number a profile holds: name -> (meaning, may it be null).
FIELDS: dict[str, tuple[str, bool]] = {
    "compartments_per_core": ("neuron compartments per core", False),
    "neuron_groups_per_core": ("neuron groups (programs/configurations) per core", False),
    "input_axons_per_core": ("input axons per core", False),
    "output_axons_per_core": ("output axons per core", False),
    "synapse_words_per_core": ("synapse memory words per core", False),
    "synapse_word_bits": ("bits of one synapse memory word", False),
    "learning_traces_per_core": ("learning-trace slots per core", False),
    "cores_per_chip": ("neuro cores per chip", False),
    "max_chips": ("chips in the system (null = as many as needed)", True),
    "weight_bits": ("default stored weight width in bits, sign included", False),
    "rate_payload_bits": ("default graded payload width of a rate spike", False),
    "error_payload_bits": ("default graded payload width of an error spike", False),
    "product_bits": ("widest product of the neuron's multiplier, sign included", False),
    "accumulator_bits": ("dendritic accumulator width (the summed drive), sign included",
                         False),
}


#: Per-event cost figures a profile may hold (``events:``): name -> (meaning, unit).
EVENTS: dict[str, tuple[str, str]] = {
    "synaptic_op_energy": ("energy of one synaptic operation (one weight read and added)", "pJ"),
    "synaptic_op_time": ("time of one synaptic operation on a core", "ns"),
    "learning_update_energy": ("energy of one synapse update by the learning engine", "pJ"),
    "learning_update_time": ("time of one synapse update by the learning engine", "ns"),
    "neuron_update_energy": ("energy of one compartment update", "pJ"),
    "neuron_update_time": ("time of one compartment update", "ns"),
    "message_energy": ("energy of sending one spike message (one output axon)", "pJ"),
    "message_time": ("time a core takes to send one spike message", "ns"),
    "hop_energy": ("energy of one mesh hop of a message between cores", "pJ"),
    "hops_per_message": ("mesh hops of a message that leaves its core", "hops"),
    "chip_crossing_energy": ("energy of one message crossing between chips", "pJ"),
    "barrier_time": ("barrier synchronisation at the end of every time step", "us"),
    "static_power": ("static (leakage) power of one chip", "W"),
}


@dataclass(frozen=True)
class Figure:
    """A per-event figure: ``low`` and ``high`` (equal when the sources agree), with its
    source, confidence and, for Loihi 2 profiles, ``stand_in`` (``loihi1`` when the number is
    a Loihi 1 figure standing in for an unpublished Loihi 2 one)."""

    low: float
    high: float
    unit: str
    source: str
    confidence: str
    stand_in: str | None = None

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "unit": self.unit, "source": self.source,
                "confidence": self.confidence, "stand_in": self.stand_in}


class ProfileError(LavaGleError, ValueError):
    """A hardware profile is missing, malformed or holds an impossible number."""


@dataclass(frozen=True)
class Number:
    """One profile number with where it comes from."""

    value: int | None
    source: str
    confidence: str


@dataclass(frozen=True)
class HardwareProfile:
    """A validated hardware profile. ``numbers`` maps each name of :data:`FIELDS` to a
    :class:`Number`; attribute access (``profile.cores_per_chip``) gives the value."""

    name: str
    description: str
    numbers: dict[str, Number]
    path: str
    events: dict[str, Figure] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        numbers = self.__dict__.get("numbers", {})
        if key in numbers:
            return numbers[key].value
        raise AttributeError(key)

    def with_values(self, **values: int | None) -> "HardwareProfile":
        """A copy with some numbers replaced (source ``override``, confidence ``user``)."""
        numbers = dict(self.numbers)
        for key, value in values.items():
            numbers[key] = _number({"value": value, "source": "override", "confidence": "user"},
                                   key, self.path)
        return HardwareProfile(self.name, self.description, numbers, self.path, self.events)

    def to_dict(self) -> dict:
        """JSON-ready: name, description and every number with source and confidence."""
        return {"name": self.name, "description": self.description,
                "values": {k: {"value": n.value, "source": n.source, "confidence": n.confidence}
                           for k, n in self.numbers.items()},
                "events": {k: f.to_dict() for k, f in self.events.items()}}


def available_profiles() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(p.stem for p in PROFILE_DIR.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def load_profile(name_or_path: str | Path = DEFAULT_PROFILE) -> HardwareProfile:
    """A shipped profile by name (``loihi2``, ``kapoho_point``, ``loihi1``) or a profile file.

    Raises
    ------
    ProfileError
        Unknown name, unreadable file, unknown key, or a number that is not a positive
        integer; the message names the field and the file.
    """
    return _load(str(name_or_path), seen=())


def _resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise ProfileError(f"profile file not found: {name_or_path}")
        return path
    for suffix in (".yaml", ".yml", ".json"):
        candidate = PROFILE_DIR / f"{name_or_path}{suffix}"
        if candidate.is_file():
            return candidate
    raise ProfileError(f"unknown profile {name_or_path!r}; shipped profiles are "
                       f"{available_profiles()}, or give the path of a .yaml/.json profile file")


def _load(name_or_path: str, seen: tuple[str, ...]) -> HardwareProfile:
    path = _resolve(name_or_path)
    where = str(path)
    if where in seen:
        raise ProfileError(f"{where}: base profiles form a cycle: {' -> '.join(seen + (where,))}")
    try:
        text = path.read_text(encoding="utf-8")
        data = load_document(text, path.suffix.lower())
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ProfileError(f"{where}: cannot read the profile ({exc})") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: a profile must be a mapping with 'name' and 'values'")
    unknown = sorted(set(data) - {"name", "description", "base", "values", "events"})
    if unknown:
        raise ProfileError(f"{where}: unknown key {unknown[0]!r}; allowed: name, description, "
                           "base, values, events")
    values = data.get("values", {})
    if not isinstance(values, dict):
        raise ProfileError(f"{where}: 'values' must be a mapping of number names")
    numbers: dict[str, Number] = {}
    events: dict[str, Figure] = {}
    base = data.get("base")
    if base is not None:
        parent = _load(str(base), seen + (where,))
        numbers.update(parent.numbers)
        events.update(parent.events)
    raw_events = data.get("events", {})
    if not isinstance(raw_events, dict):
        raise ProfileError(f"{where}: 'events' must be a mapping of event names")
    for key, raw in raw_events.items():
        events[key] = _figure(raw, key, where)
    for key, raw in values.items():
        if key not in FIELDS:
            raise ProfileError(f"{where}: values.{key}: unknown number; known numbers are "
                               f"{sorted(FIELDS)}")
        numbers[key] = _number(raw, key, where)
    missing = sorted(set(FIELDS) - set(numbers))
    if missing:
        raise ProfileError(f"{where}: values.{missing[0]}: missing ({FIELDS[missing[0]][0]}); "
                           "give it or set 'base: loihi2' to inherit the rest")
    name = data.get("name", path.stem)
    return HardwareProfile(str(name), str(data.get("description", "")), numbers, where, events)


def _figure(raw: Any, key: str, where: str) -> Figure:
    """One ``events:`` entry: a number, or ``{value | low, high, source, confidence,
    stand_in}``."""
    if key not in EVENTS:
        raise ProfileError(f"{where}: events.{key}: unknown event; known events are "
                           f"{sorted(EVENTS)}")
    if not isinstance(raw, dict):
        raw = {"value": raw, "source": f"user profile {where}", "confidence": "user"}
    extra = sorted(set(raw) - {"value", "low", "high", "source", "confidence", "stand_in"})
    if extra:
        raise ProfileError(f"{where}: events.{key}: unknown field {extra[0]!r}; give value or "
                           "low and high, with source, confidence, stand_in")
    low = raw.get("low", raw.get("value"))
    high = raw.get("high", raw.get("value"))
    for v in (low, high):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or v < 0:
            raise ProfileError(f"{where}: events.{key}: give a non-negative number as value "
                               f"(or low and high), got {v!r}")
    if low > high:
        raise ProfileError(f"{where}: events.{key}: low {low} is above high {high}")
    confidence = raw.get("confidence", "user")
    if confidence not in CONFIDENCES:
        raise ProfileError(f"{where}: events.{key}.confidence: must be one of "
                           f"{list(CONFIDENCES)}, got {confidence!r}")
    stand_in = raw.get("stand_in")
    return Figure(float(low), float(high), EVENTS[key][1],
                  str(raw.get("source", f"user profile {where}")), confidence,
                  None if stand_in is None else str(stand_in))


def _number(raw: Any, key: str, where: str) -> Number:
    if isinstance(raw, dict):
        extra = sorted(set(raw) - {"value", "source", "confidence"})
        if extra or "value" not in raw:
            raise ProfileError(f"{where}: values.{key}: give a number or "
                               "{value, source, confidence}")
        value, source = raw["value"], str(raw.get("source", f"user profile {where}"))
        confidence = raw.get("confidence", "user")
    else:
        value, source, confidence = raw, f"user profile {where}", "user"
    if confidence not in CONFIDENCES:
        raise ProfileError(f"{where}: values.{key}.confidence: must be one of {list(CONFIDENCES)}, "
                           f"got {confidence!r}")
    nullable = FIELDS[key][1]
    if value is None and nullable:
        return Number(None, source, confidence)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not is_count(value):
        raise ProfileError(f"{where}: values.{key}: must be a positive integer"
                           f"{' or null' if nullable else ''}, got {value!r}")
    return Number(value, source, confidence)
