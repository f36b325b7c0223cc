"""Read, validate and write layered GLE network descriptions (YAML or JSON, one schema).

Every problem raises :class:`~lava_gle.errors.NetworkSpecError` naming the field path
(``layers[1].tau_r``) and what to do about it; no other exception type escapes
:func:`network_from_dict` or :func:`load_network` for any input.
The format is documented in ``docs/network-format.md``.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lava_gle.errors import NetworkSpecError
from lava_gle.results import write_text
from lava_gle.memory import require_memory
from lava_gle.network import (
    BACKWARD_MODES, INIT_SCHEMES, LOSS_NAMES, PHI_NAMES,
    InitSpec, InputSpec, LayerSpec, LearningSpec, Network, NormaliserState, as_dict_value,
)
from lava_gle.numerics.floating import GAIN_MAX

FORMAT_VERSION = 1

_TOP_KEYS = {"gle_network", "name", "dt", "input", "layers", "learning", "seed", "fixed_point"}
_INPUT_KEYS = {"size"}
_LAYER_KEYS = {"name", "size", "tau_m", "tau_r", "phi", "bias", "weights", "biases", "init",
               "eta_scale", "error_bound", "gain_decay", "gain_max", "error_norm_decay",
               "normaliser_state", "fixed_point"}
_STATE_KEYS = {"steps", "gain_ms", "error_ms"}
_INIT_KEYS = {"scheme", "scale", "seed"}
_LEARNING_KEYS = {"enabled", "eta", "gamma", "beta", "loss", "prospective_errors", "backward",
                  "feedback_seed", "learn_tau", "eta_tau", "tau_m_min", "epoch_steps"}

#: ``fixed_point:`` options overriding the quantisation defaults (``docs/fixed-point.md``,
#: section 5): key -> (kind, minimum, maximum), kind "int", "number", "positive" (a number
#: > 0) or "choice" (one of CHOICES[key]); None = unbounded.
FixedOption = tuple[str, float | None, float | None]
NETWORK_OPTIONS: dict[str, FixedOption] = {
    "input_range": ("positive", None, None), "weight_headroom": ("number", 1.0, None),
    "signal_growth": ("number", 1.0, None), "weight_range": ("number", 0.0, None),
    "seed": ("int", 0, None), "rounding": ("choice", None, None),
    "timing": ("choice", None, None), "backward_rounding": ("choice", None, None),
    "product_bits": ("int", 37, 63), "accumulator_bits": ("int", 9, 62),
    "learning_products": ("choice", None, None), "gain_payload_bits": ("int", 8, 24)}
LAYER_OPTIONS: dict[str, FixedOption] = {
    "weight_exp": ("int", -24, 8), "bias_exp": ("int", -24, 8), "u_bits": ("int", 0, 23),
    "error_bits": ("int", -16, 23), "rate_bits": ("int", -8, 16),
    "error_trace_range": ("positive", None, None), "pre_trace_coarsening": ("int", 0, 6),
    "weight_tag_bits": ("int", 0, 7), "tau_bits": ("int", 0, 23)}
CHOICES = {"rounding": ("per_synapse", "shared"), "timing": ("exact", "chip"),
           "backward_rounding": ("independent", "mirrored"),
           "learning_products": ("compensated", "exact")}


class _Checker:
    """Small typed accessors that raise NetworkSpecError with the field path."""

    def __init__(self, source: str | None):
        self.source = source

    def fail(self, path: str, problem: str) -> NetworkSpecError:
        return NetworkSpecError(path, problem, self.source)

    def mapping(self, value: Any, path: str) -> Mapping:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"must be a mapping (object), got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"keys must be strings, got {key!r}")
        return value

    def keys(self, value: Mapping, allowed: set[str], required: set[str], path: str) -> None:
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(_join(path, unknown[0]),
                            f"unknown key; allowed keys here are {sorted(allowed)}")
        missing = sorted(required - set(value))
        if missing:
            raise self.fail(_join(path, missing[0]), "missing required key")

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise self.fail(path, f"must be true or false, got {_kind(value)}")
        return bool(value)

    def integer(self, value: Any, path: str, minimum: float | None = None,
                maximum: float | None = None) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            if isinstance(value, float) and value.is_integer() and math.isfinite(value):
                value = int(value)
            else:
                raise self.fail(path, f"must be an integer, got {_kind(value)}")
        value = int(value)
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be >= {minimum:g}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(path, f"must be <= {maximum:g}, got {value}")
        return value

    def number(self, value: Any, path: str, positive: bool = False,
               minimum: float | None = None) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise self.fail(path, f"must be a number, got {_kind(value)}")
        try:
            value = float(value)
        except (OverflowError, ValueError):
            raise self.fail(path, "must be a finite number") from None
        if not math.isfinite(value):
            raise self.fail(path, f"must be a finite number, got {value}")
        if positive and value <= 0:
            raise self.fail(path, f"must be > 0, got {value:g}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"must be >= {minimum:g}, got {value:g}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, f"must be one of {list(choices)}, got {value!r}")
        return value

    def fixed_point(self, value: Any, path: str, options: dict[str, FixedOption]) -> dict:
        """A ``fixed_point`` mapping with the ``options`` (NETWORK_OPTIONS or LAYER_OPTIONS)."""
        raw = self.mapping(value, path)
        other, there = ((LAYER_OPTIONS, "each layer's layers[i].fixed_point")
                        if options is NETWORK_OPTIONS else
                        (NETWORK_OPTIONS, "the network's top-level fixed_point"))
        misplaced = sorted(set(raw) & set(other) - set(options))
        if misplaced:
            raise self.fail(_join(path, misplaced[0]), f"is an option of {there}; move it there")
        self.keys(raw, set(options), set(), path)
        out: dict[str, Any] = {}
        for key, v in raw.items():
            kind, lo, hi = options[key]
            where = _join(path, key)
            if kind == "choice":
                out[key] = self.choice(v, where, CHOICES[key])
            elif kind == "int":
                out[key] = self.integer(v, where, minimum=lo, maximum=hi)
            else:
                out[key] = self.number(v, where, positive=kind == "positive", minimum=lo)
        return out

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"must be a non-empty string, got {_kind(value)}")
        return value

    def array(self, value: Any, path: str, shape: tuple[int, ...]) -> np.ndarray:
        """A finite float64 array of exactly ``shape`` from nested lists."""
        try:
            arr = np.array(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise self.fail(path, f"must be a {'x'.join(map(str, shape))} array of numbers "
                                  "(nested lists, all rows the same length)") from None
        if _has_bool(value):
            raise self.fail(path, "must hold numbers, not true/false")
        if arr.shape != shape:
            want = "[" + ", ".join(map(str, shape)) + "]"
            hint = " (row i holds the synapses onto neuron i: [size, size of the layer below])" \
                if len(shape) == 2 else ""
            raise self.fail(path, f"has shape {list(arr.shape)}, expected {want}{hint}")
        if not np.all(np.isfinite(arr)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise self.fail(path, f"holds a non-finite value (NaN or inf) at index {list(bad)}")
        arr.setflags(write=False)
        return arr

    def tau(self, value: Any, path: str, size: int, dt: float) -> float | np.ndarray:
        """A time constant: a number or a list of ``size`` numbers, each >= dt."""
        if isinstance(value, (list, tuple, np.ndarray)):
            arr = self.array(value, path, (size,))
            worst = float(arr.min())
            if worst <= 0:
                raise self.fail(f"{path}[{int(arr.argmin())}]", f"must be > 0, got {worst:g}")
            if worst < dt:
                raise self.fail(f"{path}[{int(arr.argmin())}]",
                                f"{worst:g} is smaller than dt={dt:g}: explicit Euler is unstable "
                                "for tau < dt; raise the time constant or lower dt")
            return arr
        tau = self.number(value, path, positive=True)
        if tau < dt:
            raise self.fail(path, f"{tau:g} is smaller than dt={dt:g}: explicit Euler is "
                                  "unstable for tau < dt; raise the time constant or lower dt")
        return tau


def network_from_dict(data: Any, source: str | None = None) -> Network:
    """Validate a parsed description (dict from JSON/YAML) and build a :class:`Network`.

    Raises
    ------
    NetworkSpecError
        For any problem, naming the field path; never another exception type.
    """
    c = _Checker(source)
    top = c.mapping(data, "")
    c.keys(top, _TOP_KEYS, {"gle_network", "dt", "input", "layers"}, "")
    version = c.integer(top["gle_network"], "gle_network")
    if version != FORMAT_VERSION:
        raise c.fail("gle_network", f"format version {version} is not supported; "
                                    f"this lava-gle reads version {FORMAT_VERSION}")
    name = c.name(top.get("name", "network"), "name")
    dt = c.number(top["dt"], "dt", positive=True)
    seed = c.integer(top.get("seed", 0), "seed", minimum=0)

    inp = c.mapping(top["input"], "input")
    c.keys(inp, _INPUT_KEYS, {"size"}, "input")
    input_spec = InputSpec(size=c.integer(inp["size"], "input.size", minimum=1))

    raw_layers = top["layers"]
    if not isinstance(raw_layers, (list, tuple)):
        raise c.fail("layers", f"must be a list of layers, got {_kind(raw_layers)}")
    if not raw_layers:
        raise c.fail("layers", "is empty; a network needs at least one layer")

    layers: list[LayerSpec] = []
    below = input_spec.size
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_layers):
        p = f"layers[{i}]"
        layer = _layer(c, raw, p, i, below, dt, seed)
        if layer.name in seen:
            raise c.fail(f"{p}.name", f"{layer.name!r} is already the name of "
                                      f"layers[{seen[layer.name]}]; layer names must be unique")
        seen[layer.name] = i
        layers.append(layer)
        below = layer.size

    if layers[-1].gain_decay is not None:
        raise c.fail(f"layers[{len(layers) - 1}].gain_decay",
                     "is set on the output layer, whose rates are the read-out and what the "
                     "output error compares with the target; gains belong to hidden layers")
    learning = _learning(c, top.get("learning", {}), dt)
    if learning.loss == "ce" and layers[-1].phi != "linear":
        raise c.fail("learning.loss", f"'ce' needs a linear output layer (its rates are the "
                                      f"logits), but layers[{len(layers) - 1}].phi is "
                                      f"{layers[-1].phi!r}; use phi 'linear' or loss 'mse'")
    return Network(dt=dt, input=input_spec, layers=tuple(layers), learning=learning, name=name,
                   fixed_point=c.fixed_point(top.get("fixed_point", {}), "fixed_point",
                                             NETWORK_OPTIONS))


def _layer(c: _Checker, raw: Any, p: str, index: int, below: int, dt: float,
           seed: int) -> LayerSpec:
    raw = c.mapping(raw, p)
    c.keys(raw, _LAYER_KEYS, {"size", "tau_m", "tau_r"}, p)
    name = c.name(raw.get("name", f"layer{index}"), f"{p}.name")
    size = c.integer(raw["size"], f"{p}.size", minimum=1)
    tau_m = c.tau(raw["tau_m"], f"{p}.tau_m", size, dt)
    tau_r = c.tau(raw["tau_r"], f"{p}.tau_r", size, dt)
    phi = c.choice(raw.get("phi", "linear"), f"{p}.phi", PHI_NAMES)
    bias = c.boolean(raw.get("bias", True), f"{p}.bias")

    weights = None
    if raw.get("weights") is not None:
        weights = c.array(raw["weights"], f"{p}.weights", (size, below))
    biases = None
    if raw.get("biases") is not None:
        if not bias:
            raise c.fail(f"{p}.biases", "is given but the layer has bias: false; "
                                        "remove 'biases' or set 'bias: true'")
        biases = c.array(raw["biases"], f"{p}.biases", (size,))

    init = InitSpec(seed=seed)
    if "init" in raw:
        ri = c.mapping(raw["init"], f"{p}.init")
        c.keys(ri, _INIT_KEYS, set(), f"{p}.init")
        init = InitSpec(
            scheme=c.choice(ri.get("scheme", init.scheme), f"{p}.init.scheme", INIT_SCHEMES),
            scale=c.number(ri.get("scale", init.scale), f"{p}.init.scale", minimum=0),
            seed=c.integer(ri.get("seed", seed), f"{p}.init.seed", minimum=0))
        if weights is not None:
            raise c.fail(f"{p}.init", "is given together with explicit 'weights'; keep one")
    return LayerSpec(name=name, size=size, tau_m=tau_m, tau_r=tau_r, phi=phi, bias=bias,
                     weights=weights, biases=biases, init=init,
                     fixed_point=c.fixed_point(raw.get("fixed_point", {}), f"{p}.fixed_point",
                                               LAYER_OPTIONS),
                     eta_scale=c.number(raw.get("eta_scale", 1.0), f"{p}.eta_scale",
                                        minimum=0),
                     error_bound=None if raw.get("error_bound") is None else
                     c.number(raw["error_bound"], f"{p}.error_bound", positive=True),
                     gain_decay=_decay(c, raw, p, "gain_decay"),
                     error_norm_decay=_decay(c, raw, p, "error_norm_decay"),
                     gain_max=_gain_max(c, raw, p),
                     normaliser_state=_normaliser_state(c, raw, p, size))


#: The normaliser state's mean squares by the option they belong to.
_STATE_OF = {"gain_ms": "gain_decay", "error_ms": "error_norm_decay"}


def _normaliser_state(c: _Checker, raw: dict, p: str, size: int) -> NormaliserState | None:
    """A layer's ``normaliser_state``: ``steps`` (>= 1) and a mean square (finite, >= 0,
    one per neuron) for each of its normalisers, none for one it lacks."""
    if raw.get("normaliser_state") is None:
        return None
    q = f"{p}.normaliser_state"
    if all(raw.get(option) is None for option in _STATE_OF.values()):
        raise c.fail(q, "is given but the layer has no normalisers; add 'gain_decay' or "
                        "'error_norm_decay', or remove 'normaliser_state'")
    state = c.mapping(raw["normaliser_state"], q)
    c.keys(state, _STATE_KEYS, {"steps"}, q)
    arrays = {}
    for key, option in _STATE_OF.items():
        has = raw.get(option) is not None
        if has and state.get(key) is None:
            raise c.fail(f"{q}.{key}", f"is missing: the layer has {option!r}, so its state "
                                       "holds the running mean square of each neuron's "
                                       f"{'rate' if key == 'gain_ms' else 'error'}")
        if not has and state.get(key) is not None:
            raise c.fail(f"{q}.{key}", f"is given but the layer has no {option!r}; add it "
                                       f"or remove '{key}'")
        if has:
            ms = c.array(state[key], f"{q}.{key}", (size,))
            if np.any(ms < 0):
                raise c.fail(f"{q}.{key}", f"must be >= 0 (mean squares), got {ms.min():g}")
            ms.setflags(write=False)
            arrays[key] = ms
    return NormaliserState(steps=c.integer(state["steps"], f"{q}.steps", minimum=1), **arrays)


def _gain_max(c: _Checker, raw: dict, p: str) -> float:
    """The gains' cap: :data:`GAIN_MAX` unless given, and given only with a gain."""
    if raw.get("gain_max") is None:
        return GAIN_MAX
    if raw.get("gain_decay") is None:
        raise c.fail(f"{p}.gain_max", "caps the neurons' gains, but the layer has none; add "
                                      "'gain_decay' or remove 'gain_max'")
    cap = c.number(raw["gain_max"], f"{p}.gain_max", minimum=1)
    if cap > GAIN_MAX:
        raise c.fail(f"{p}.gain_max", f"{cap:g} is above the default {GAIN_MAX:g}, the "
                                      "largest cap the integers are tested with; use 1-"
                                      f"{GAIN_MAX:g}")
    return cap


def _decay(c: _Checker, raw: dict, p: str, key: str) -> float | None:
    """A normaliser's decay: None, or a number strictly between 0 and 1."""
    if raw.get(key) is None:
        return None
    decay = c.number(raw[key], f"{p}.{key}", positive=True)
    if not decay < 1:
        raise c.fail(f"{p}.{key}", f"{decay:g} is not below 1; a running average's decay is "
                                   "in (0, 1), e.g. 0.999 (about 1,000 steps)")
    return decay


def _learning(c: _Checker, raw: Any, dt: float) -> LearningSpec:
    p = "learning"
    raw = c.mapping(raw, p)
    c.keys(raw, _LEARNING_KEYS, set(), p)
    d = LearningSpec()
    enabled = c.boolean(raw.get("enabled", d.enabled), f"{p}.enabled")
    if enabled and "eta" not in raw:
        raise c.fail(f"{p}.eta", "missing: learning is enabled, so give a learning rate")
    learn_tau = c.boolean(raw.get("learn_tau", d.learn_tau), f"{p}.learn_tau")
    eta = c.number(raw.get("eta", d.eta), f"{p}.eta", minimum=0)
    tau_m_min = raw.get("tau_m_min", d.tau_m_min)
    if tau_m_min is not None:
        tau_m_min = c.number(tau_m_min, f"{p}.tau_m_min", positive=True)
        if tau_m_min < dt:
            raise c.fail(f"{p}.tau_m_min", f"{tau_m_min:g} is smaller than dt={dt:g}; "
                                           "learned time constants must stay >= dt")
    return LearningSpec(
        enabled=enabled,
        eta=eta,
        gamma=c.number(raw.get("gamma", d.gamma), f"{p}.gamma"),
        beta=c.number(raw.get("beta", d.beta), f"{p}.beta"),
        loss=c.choice(raw.get("loss", d.loss), f"{p}.loss", LOSS_NAMES),
        prospective_errors=c.boolean(raw.get("prospective_errors", d.prospective_errors),
                                     f"{p}.prospective_errors"),
        backward=c.choice(raw.get("backward", d.backward), f"{p}.backward", BACKWARD_MODES),
        feedback_seed=c.integer(raw.get("feedback_seed", d.feedback_seed),
                                f"{p}.feedback_seed", minimum=0),
        learn_tau=learn_tau,
        eta_tau=c.number(raw.get("eta_tau", eta), f"{p}.eta_tau", minimum=0),
        tau_m_min=tau_m_min,
        epoch_steps=c.integer(raw.get("epoch_steps", d.epoch_steps), f"{p}.epoch_steps",
                              minimum=1),
    )


def load_network(path: str | os.PathLike) -> Network:
    """Load and validate a description from a ``.json``, ``.yaml`` or ``.yml`` file."""
    path = Path(path)
    source = str(path)
    if path.is_dir():
        inner = path / "network.json"
        raise NetworkSpecError("", "is a directory, not a network description (a .json, .yaml "
                               "or .yml file)" + (f"; the description in it is {inner}"
                                                  if inner.is_file() else "")
                               + "; 'simulate' and 'deploy' also run a bundle directory, "
                               "which holds manifest.json ('lava-gle map NET --out DIR')",
                               source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NetworkSpecError("", "file not found", source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NetworkSpecError("", f"cannot read the file ({exc})", source) from None
    return network_from_dict(parse_text(text, path.suffix.lower(), source), source)


class DuplicateKeyError(ValueError):
    """A mapping names the same key twice (JSON and YAML parsers would keep the last)."""


class DescriptionLoader(yaml.SafeLoader):
    """PyYAML's safe loader with the changes a description needs.

    Numbers: YAML 1.1 (what PyYAML implements) reads ``5e-2`` and ``1e3`` as strings, it
    wants ``5.0e-2``; this loader reads them as numbers, as YAML 1.2 and JSON do. It
    reads ``010`` as the octal 8 (and ``0x10`` as 16, ``1_000`` as 1000): integers
    written other than in plain decimal are refused with their line.
    Duplicate keys: refused with their line instead of silently keeping the last value.
    """

    def construct_yaml_int(self, node):
        text = str(node.value)
        if not re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text):
            raise yaml.constructor.ConstructorError(
                None, None, f"the integer {text!r} is not plain decimal (YAML 1.1 would read "
                f"it as {super().construct_yaml_int(node)}); write it in decimal digits",
                node.start_mark)
        return super().construct_yaml_int(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            hashable = isinstance(key, (str, int, float, bool))
            if hashable and key in seen:
                raise DuplicateKeyError(f"key {key!r} appears twice in one mapping (line "
                                        f"{key_node.start_mark.line + 1}); keep one of them")
            if hashable:
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


DescriptionLoader.add_constructor("tag:yaml.org,2002:int",
                                  DescriptionLoader.construct_yaml_int)
DescriptionLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def json_object(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook`` for :func:`json.loads` that refuses duplicate keys."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"key {key!r} appears twice in one object; keep one of them")
        out[key] = value
    return out


def load_document(text: str, suffix: str) -> Any:
    """JSON (``.json``) or YAML (anything else) text as Python objects; raises
    json.JSONDecodeError, yaml.YAMLError or :class:`DuplicateKeyError` (ValueErrors)."""
    if suffix == ".json":
        return json.loads(text, object_pairs_hook=json_object)
    return yaml.load(text, Loader=DescriptionLoader)  # a SafeLoader subclass


def parse_text(text: str, suffix: str, source: str | None = None) -> Any:
    """Parse JSON (``.json``) or YAML (anything else) text, mapping syntax errors and
    duplicate keys to NetworkSpecError with the line and column."""
    try:
        return load_document(text, suffix)
    except DuplicateKeyError as exc:
        raise NetworkSpecError("", str(exc), source) from None
    except json.JSONDecodeError as exc:
        raise NetworkSpecError("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                                   f"{exc.msg}", source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise NetworkSpecError("", f"invalid YAML{where}: {what}", source) from None
    except (ValueError, RecursionError) as exc:
        raise NetworkSpecError("", f"cannot parse the file: {exc}", source) from None


def network_to_dict(net: Network, explicit_parameters: bool = False) -> dict:
    """The description as a JSON/YAML-ready dict; ``load(save(net))`` round-trips.

    With ``explicit_parameters`` every layer carries its (initial) ``weights`` and
    ``biases`` instead of an ``init`` block, as the golden-case files do (after
    checking that the lists fit in memory, :class:`~lava_gle.errors.MemoryLimitError`).
    """
    if explicit_parameters:
        require_memory(net, "parameter lists")
    layers = []
    for i, layer in enumerate(net.layers):
        d: dict[str, Any] = {"name": layer.name, "size": layer.size,
                             "tau_m": as_dict_value(layer.tau_m),
                             "tau_r": as_dict_value(layer.tau_r),
                             "phi": layer.phi, "bias": layer.bias}
        if layer.weights is not None or explicit_parameters:
            d["weights"] = net.initial_weights(i).tolist()
        else:
            d["init"] = {"scheme": layer.init.scheme, "scale": layer.init.scale,
                         "seed": layer.init.seed}
        if layer.bias and (layer.biases is not None or explicit_parameters):
            d["biases"] = net.initial_biases(i).tolist()
        if layer.fixed_point:
            d["fixed_point"] = dict(layer.fixed_point)
        if layer.eta_scale != 1.0:
            d["eta_scale"] = layer.eta_scale
        for key in ("error_bound", "gain_decay", "error_norm_decay"):
            if getattr(layer, key) is not None:
                d[key] = getattr(layer, key)
        if layer.gain_decay is not None and layer.gain_max != GAIN_MAX:
            d["gain_max"] = layer.gain_max
        state = layer.normaliser_state
        if state is not None:
            d["normaliser_state"] = {"steps": state.steps, **{
                key: getattr(state, key).tolist() for key in _STATE_OF
                if getattr(state, key) is not None}}
        layers.append(d)
    lrn = net.learning
    learning = {"enabled": lrn.enabled, "eta": lrn.eta, "gamma": lrn.gamma, "beta": lrn.beta,
                "loss": lrn.loss, "prospective_errors": lrn.prospective_errors,
                "backward": lrn.backward, "feedback_seed": lrn.feedback_seed,
                "learn_tau": lrn.learn_tau, "eta_tau": lrn.eta_tau}
    if lrn.tau_m_min is not None:
        learning["tau_m_min"] = lrn.tau_m_min
    if lrn.epoch_steps != 1:
        learning["epoch_steps"] = lrn.epoch_steps
    out = {"gle_network": FORMAT_VERSION, "name": net.name, "dt": net.dt,
           "input": {"size": net.input.size}, "layers": layers, "learning": learning}
    if net.fixed_point:
        out["fixed_point"] = dict(net.fixed_point)
    return out


def check_network(net: Any) -> Network:
    """``net``, checked as its description would be: a Network built or changed in Python
    (``dataclasses.replace``, :meth:`~lava_gle.network.Network.with_learning`,
    :meth:`~lava_gle.network.Network.with_parameters`) is refused where a file with the
    same content is (:class:`~lava_gle.errors.NetworkSpecError` naming the field: tau_m
    below dt, a negative eta, an unknown phi, a weight matrix of the wrong shape, ...).
    Anything but a Network is refused naming the loader to use. The engines, the
    quantiser, the mapper and the calibration call it on what they are given."""
    if not isinstance(net, Network):
        loader = ("load_network(path)" if isinstance(net, (str, os.PathLike))
                  else "network_from_dict(data)" if isinstance(net, Mapping)
                  else "load_network(path) or network_from_dict(data)")
        raise NetworkSpecError("", f"expected a Network, got {type(net).__name__}; build one "
                                   f"with {loader}")
    network_from_dict(network_to_dict(net), source="the Network given")
    return net


def save_network(net: Network, path: str | os.PathLike, explicit_parameters: bool = False) -> None:
    """Write ``net`` as JSON (``.json``) or YAML (``.yaml``/``.yml``)."""
    path = Path(path)
    data = network_to_dict(net, explicit_parameters)
    if path.suffix.lower() == ".json":
        write_text(path, json.dumps(data, indent=1) + "\n")
    else:
        write_text(path, yaml.safe_dump(data, sort_keys=False))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _has_bool(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_bool(v) for v in value)
    return False
