"""The learning-rule options of the classification experiments and their command line.

:class:`RuleOptions` is what every experiment config carries about how the network
learns (optimiser, loss, the ``sgd`` rule's rate and per-layer settings, normalisers,
fixed-point options, weight averaging); :func:`rule_overrides` turns the command line's
flags into those fields, refusing a combination no backend runs with the fix named.
The loop that trains with them is :mod:`lava_gle.experiments.training`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from lava_gle.backends import BACKENDS
from lava_gle.description import NETWORK_OPTIONS
from lava_gle.errors import LavaGleError
from lava_gle.network import LayerSpec, Network
from lava_gle.numerics import fixed as X
from lava_gle.numerics.floating import GAIN_MAX
from lava_gle.quantize.network import decay_shift, nearest_shift_decay


@dataclass(frozen=True)
class RuleOptions:
    """The learning-rule options every classification experiment's config carries.

    ``optimizer``: ``adam`` (the paper's) or ``sgd`` (GLE's own rule, as a chip learns;
    the only one of the fixed-point backends). ``loss``: ``ce`` (softmax, float only) or
    ``mse`` against one-hot target rates ``target_rate`` (a chip's output neurons form
    ``beta (y - r)`` from a target payload). ``sgd_eta``: the rule's rate (None: the
    experiment's default), halved after every ``halve_every`` epochs (0: never).
    ``agreement_steps``: learning steps of the ``lava_fixed_agreement`` check of a
    fixed-point run. ``weight_range``: fixed point only, the weights' 8-bit range
    (``fixed_point.weight_range``, with ``weight_headroom`` 1; None: the quantiser's
    defaults, range 4 and headroom 2): a smaller range gives finer weights, so the
    stochastic rounding of each online update to whole weight LSBs adds less noise.
    ``eta_scale``: ``sgd`` only, per layer name the factor of its projection's rate
    (``eta_scale`` of the description's layer; None: the experiment's default, {}: one eta
    for all). ``formats``: fixed point only, ``initial`` sizes the formats from the
    initial network and the first training inputs; ``float`` from the float run with the
    same rule (:func:`~lava_gle.experiments.fixed_training.formats_from_float`), trained first
    (a host-side rehearsal before the integers train; overrides ``weight_range``).
    ``weight_tag_bits``: fixed point only, per layer name ``fixed_point.weight_tag_bits``
    of its projection (the synaptic tag as low-order weight bits while learning).
    ``error_bound``: per layer name its
    ``error_bound`` (the error clipped as the neurons form it, in both arithmetics; a
    layer given None is unbounded; None: the experiment's default for the ``sgd`` rule,
    mnist1d's ``ERROR_BOUNDS`` and none for yinyang, and none for ``adam``).
    ``normalizer_decay``: float, ``sgd`` only: neuron-local normalisers with this decay,
    ``gain_decay`` on every hidden layer and ``error_norm_decay`` on every layer
    (``docs/model.md``, "Neuron-local normalisers"); the experiment's default eta scales
    and error bounds, tuned for the plain rule, then do not apply (given ones do).
    ``gain_decay``: the gains' decay where it differs (None: ``normalizer_decay``); the
    gains shape the forward pass, so a longer average keeps the trained network's frozen
    gains closer to what it learned with. ``gain_max``: the gains' cap, ``gain_max`` of
    the hidden layers: one number for all, or per layer name (the key ``"*"``: every
    hidden layer not named; None, or a layer not named without ``"*"``: the model's
    default, ``floating.GAIN_MAX``).
    ``gain_payload_bits``: fixed point with normalisers only,
    ``fixed_point.gain_payload_bits`` of the network (the width of the gained payloads
    ``g r``; None: the quantiser's default, 16). ``rounding_seed``: fixed point only,
    ``fixed_point.seed`` of the network, the seed of the learning engines' random numbers
    (stochastic rounding, error-trace dither; None: the quantiser's default, 0): runs that
    differ in it only are draws of the integers' rounding against one float twin.
    ``average_window``: batches over which the tested weights are averaged
    (:attr:`~lava_gle.experiments.training.TrainConfig.average_window`; None: not
    averaged); ``average_every``: batches between the average's updates (None: every
    batch, 1). ``no_bias``: names of layers built without a bias, in both arithmetics
    (None: every layer has one): on a chip no bias rule, so no random walk of an unneeded
    bias by the error trace's rounding (``docs/experiments-log.md``, "Session 39").
    ``epoch_steps``: ``sgd`` only, ``learning.epoch_steps`` of the network (1: GLE's rule
    every step).
    """

    optimizer: str = "adam"
    loss: str = "ce"
    sgd_eta: float | None = None
    halve_every: int = 0
    target_rate: float = 1.0
    agreement_steps: int = 2000
    weight_range: float | None = None
    eta_scale: dict[str, float] | None = None
    formats: str = "initial"
    weight_tag_bits: dict[str, int] | None = None
    error_bound: dict[str, float | None] | None = None
    normalizer_decay: float | None = None
    gain_decay: float | None = None
    gain_max: float | dict[str, float] | None = None
    gain_payload_bits: int | None = None
    rounding_seed: int | None = None
    average_window: float | None = None
    average_every: int | None = None
    no_bias: list[str] | None = None
    epoch_steps: int = 1

    def rule_fields(self, adam_lr: float, sgd_eta: float, batch: int) -> dict[str, Any]:
        """The :class:`~lava_gle.experiments.training.TrainConfig` fields of these options
        (``sgd_eta``: the default rate of the ``sgd`` rule); evaluation runs at least 100
        sequences side by side."""
        sgd = self.optimizer == "sgd"
        return {"optimizer": self.optimizer, "halve_every": self.halve_every,
                "target_rate": self.target_rate,
                "lr": (self.sgd_eta if self.sgd_eta is not None else sgd_eta) if sgd
                else adam_lr,
                "eval_batch": None if batch >= 100 else 100,
                "average_window": self.average_window or 0.0,
                "average_every": self.average_every or 1}

    def apply_to(self, net: Network, eta_scales: dict[str, float],
                 error_bounds: dict[str, float] | None = None) -> Network:
        """``net`` with these options' per-layer settings: the ``sgd`` rule's eta scales
        and error bounds (``eta_scales``, ``error_bounds``: the experiment's defaults, not
        used with normalisers), weight tags, normalisers, their payloads' width, the
        rounding seed and the layers without a bias."""
        if self.normalizer_decay is not None:
            eta_scales, error_bounds = {}, {}
        net = self.without_biases(self.with_normalizers(self.with_weight_tags(
            self.with_error_bounds(self.with_eta_scales(net, eta_scales),
                                   error_bounds or {}))))
        if self.epoch_steps != 1:
            net = net.with_learning(epoch_steps=self.epoch_steps)
        network_wide = {"gain_payload_bits": self.gain_payload_bits,
                        "seed": self.rounding_seed}
        network_wide = {k: v for k, v in network_wide.items() if v is not None}
        if not network_wide:
            return net
        return replace(net, fixed_point={**net.fixed_point, **network_wide})

    def with_normalizers(self, net: Network) -> Network:
        """``net`` with :attr:`normalizer_decay` as ``gain_decay`` of its hidden layers and
        ``error_norm_decay`` of every layer (``net`` itself when None). The experiment's
        own error formats (``error_bits``, ``error_trace_range``), sized for the plain
        rule's errors, are dropped: calibration sizes the formats, and the traces span the
        normalised errors."""
        decay = self.normalizer_decay
        if decay is None:
            return net
        gain = decay if self.gain_decay is None else self.gain_decay
        top = len(net.layers) - 1
        caps = self.gain_max if isinstance(self.gain_max, dict) else {"*": self.gain_max}
        named = {k: v for k, v in caps.items() if k != "*"}
        _check_layer_names(net, "--gain-max", {k: f"{v:g}" for k, v in named.items()})
        if net.layers[top].name in named:
            out = net.layers[top].name
            raise LavaGleError(f"--gain-max {out}={named[out]:g}: the output layer "
                               "has no gains; cap the hidden layers "
                               f"{[layer.name for layer in net.layers[:top]]}")

        def cap(layer: LayerSpec) -> dict[str, float]:
            g = caps.get(layer.name, caps.get("*"))
            return {} if g is None else {"gain_max": g}
        return replace(net, layers=tuple(
            replace(layer, gain_decay=None if i == top else gain, error_norm_decay=decay,
                    **({} if i == top else cap(layer)),
                    fixed_point={k: v for k, v in layer.fixed_point.items()
                                 if k not in ("error_bits", "error_trace_range")})
            for i, layer in enumerate(net.layers)))

    def with_eta_scales(self, net: Network, default: dict[str, float]) -> Network:
        """``net`` with the ``sgd`` rule's per-layer ``eta_scale`` (``default`` where
        :attr:`eta_scale` is None); unchanged for ``adam``."""
        scales = default if self.eta_scale is None else self.eta_scale
        if self.optimizer != "sgd" or not scales:
            return net
        _check_layer_names(net, "--eta-scale", {k: f"{v:g}" for k, v in scales.items()})
        for name, scale in scales.items():
            if not 0 <= scale < float("inf"):
                raise LavaGleError(f"--eta-scale {name}={scale:g}: the scale must be >= 0 "
                                   "(0: the projection does not learn)")
        return replace(net, layers=tuple(replace(layer, eta_scale=scales.get(layer.name, 1.0))
                                         for layer in net.layers))

    def with_error_bounds(self, net: Network, default: dict[str, float]) -> Network:
        """``net`` with :attr:`error_bound` as its layers' ``error_bound`` (``default``,
        the ``sgd`` rule's, where :attr:`error_bound` is None; a layer given None has no
        bound). A bound replaces the experiment's ``error_trace_range`` of its layer: the
        error trace spans the bound, so the integers learn from the errors the float rule
        learns from."""
        bounds = self.error_bound
        if bounds is None:
            bounds = default if self.optimizer == "sgd" else {}
        _check_layer_names(net, "--error-bound",
                           {k: "none" if v is None else f"{v:g}" for k, v in bounds.items()})
        return replace(net, layers=tuple(
            replace(layer, error_bound=bounds[layer.name],
                    fixed_point={k: v for k, v in layer.fixed_point.items()
                                 if k != "error_trace_range"})
            if bounds.get(layer.name) is not None else layer for layer in net.layers))

    def with_weight_tags(self, net: Network) -> Network:
        """``net`` with :attr:`weight_tag_bits` in its layers' ``fixed_point`` options."""
        tags = self.weight_tag_bits or {}
        _check_layer_names(net, "--weight-tag-bits", tags)
        return replace(net, layers=tuple(
            replace(layer, fixed_point={**layer.fixed_point, "weight_tag_bits": tags[layer.name]})
            if layer.name in tags else layer for layer in net.layers))

    def without_biases(self, net: Network) -> Network:
        """``net`` with the layers named in :attr:`no_bias` built without a bias."""
        names = self.no_bias or []
        _check_layer_names(net, "--no-bias", dict.fromkeys(names))
        return replace(net, layers=tuple(
            replace(layer, bias=False, biases=None) if layer.name in names else layer
            for layer in net.layers))


def _check_layer_names(net: Network, flag: str, values: dict[str, Any]) -> None:
    """Refuse a ``flag LAYER=VALUE`` (``flag LAYER`` where VALUE is None) whose LAYER is
    not one of ``net``'s layers."""
    names = [layer.name for layer in net.layers]
    for name, value in values.items():
        if name not in names:
            given = name if value is None else f"{name}={value}"
            raise LavaGleError(f"{flag} {given}: no layer {name!r}; the layers are {names}")


#: ``formats`` of :class:`RuleOptions`.
FORMAT_SOURCES = ("initial", "float")


def parse_layer_values(items: list[str] | None, flag: str, value: Callable[[str], Any],
                       expected: str) -> dict[str, Any] | None:
    """``flag LAYER=VALUE`` items as a dict (None: none given); ``value`` converts a VALUE
    or returns None for a bad one, which is refused naming ``expected``."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        v = value(text) if sep and name else None
        if v is None:
            raise LavaGleError(f"{flag} {item}: expected {expected}")
        out[name] = v
    return out


def _positive(text: str, zero: bool = False) -> float | None:
    """A finite number > 0 (>= 0 with ``zero``), or None."""
    try:
        scale = float(text)
    except ValueError:
        return None
    return scale if (scale >= 0 if zero else scale > 0) and scale < float("inf") else None


def parse_eta_scales(items: list[str] | None) -> dict[str, float] | None:
    """``--eta-scale LAYER=SCALE`` items as a dict (None: none given)."""
    return parse_layer_values(items, "--eta-scale", lambda t: _positive(t, zero=True),
                              "LAYER=SCALE with a number SCALE >= 0 (0: the projection does "
                              "not learn), e.g. --eta-scale out=0.001")


def parse_error_bounds(items: list[str] | None) -> dict[str, float | None] | None:
    """``--error-bound LAYER=BOUND`` items as a dict (None: none given); ``LAYER=none``
    leaves LAYER unbounded (None)."""
    bounds = parse_layer_values(items, "--error-bound",
                                lambda text: text if text == "none" else _positive(text),
                                "LAYER=BOUND with a number BOUND > 0, or LAYER=none, e.g. "
                                "--error-bound h0=128")
    return None if bounds is None else {k: None if v == "none" else v
                                        for k, v in bounds.items()}


def parse_gain_caps(items: list[str]) -> float | dict[str, float]:
    """``--gain-max`` items: one ``G`` (every hidden layer) as a float, else a dict of the
    ``LAYER=G`` items with a ``G`` among them under ``"*"`` (every other hidden layer)."""
    def cap(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    for item in items:
        g = cap(item.partition("=")[2] if "=" in item else item)
        if g is not None and not 1 <= g <= GAIN_MAX:
            raise LavaGleError(f"--gain-max {item}: the cap must be 1-{GAIN_MAX:g} "
                               f"(default {GAIN_MAX:g})")
    bare = [item for item in items if "=" not in item]
    if len(bare) > 1:
        raise LavaGleError(f"--gain-max {' '.join(bare)}: give one cap G for all hidden "
                           "layers, and LAYER=G for the ones that differ")
    every = cap(bare[0]) if bare else None
    if bare and every is None:
        raise LavaGleError(f"--gain-max {bare[0]}: expected a number G or LAYER=G, e.g. "
                           "--gain-max 100 --gain-max h0=10")
    named = parse_layer_values([item for item in items if "=" in item], "--gain-max", cap,
                               "LAYER=G with a number G, e.g. --gain-max h0=10")
    if named is None:
        return every
    return named if every is None else {"*": every, **named}


def parse_weight_tags(items: list[str] | None) -> dict[str, int] | None:
    """``--weight-tag-bits LAYER=BITS`` items as a dict (None: none given)."""
    allowed = {str(b): b for b in (0,) + X.TAG_BITS}
    return parse_layer_values(items, "--weight-tag-bits", allowed.get,
                              f"LAYER=BITS with BITS one of {', '.join(allowed)}, e.g. "
                              "--weight-tag-bits hidden=7")


#: Config fields the float run with the same rule does not depend on (the integers' own
#: options and the checks after training): its checkpoint does not compare them, so a copy
#: of one run's ``float_same_rule`` (or one written before they were ignored) serves runs
#: that differ in these only.
TWIN_IGNORES = ("weight_tag_bits", "weight_range", "formats", "agreement_steps",
                "lava_sequences", "gain_payload_bits", "rounding_seed")


def loss_note(rule: dict[str, Any], loss: str | None) -> str | None:
    """A note for a float run of the chip's optimiser (``rule`` from
    :func:`rule_overrides`) that takes the float default loss, cross-entropy, without
    asking (``loss`` None): the fixed-point runs of the same rule use MSE, so the two
    would not compare. None otherwise."""
    if loss is not None or rule.get("optimizer") != "sgd" or "loss" in rule:
        return None
    return ("note: --optimizer sgd in float with the default --loss ce (softmax), which no "
            "fixed-point backend runs; the chip's rule is --loss mse (pass --loss ce to "
            "keep cross-entropy without this note)")


def rule_overrides(backend: str, optimizer: str | None = None, loss: str | None = None,
                   batch: int | None = None, sgd_eta: float | None = None,
                   halve_every: int | None = None, eta_scale: list[str] | None = None,
                   formats: str | None = None, weight_tag_bits: list[str] | None = None,
                   target_rate: float | None = None,
                   error_bound: list[str] | None = None,
                   normalizers: float | None = None,
                   gain_decay: float | None = None,
                   gain_payload_bits: int | None = None,
                   gain_max: list[str] | None = None,
                   rounding_seed: int | None = None,
                   average_window: float | None = None,
                   average_every: int | None = None,
                   no_bias: list[str] | None = None,
                   epoch_steps: int | None = None) -> dict[str, Any]:
    """The config fields the command line sets (None: the default), checked.

    On a fixed-point backend the defaults are the chip's: ``sgd`` and ``mse``; ``adam``
    and ``ce`` are refused there with the alternative named. ``sgd_eta``, ``halve_every``
    and ``eta_scale`` (``LAYER=SCALE`` items) need ``sgd``; ``formats`` and
    ``weight_tag_bits`` (``LAYER=BITS`` items) a fixed-point backend; ``target_rate``
    (> 0) the loss ``mse``. ``error_bound`` (``LAYER=BOUND`` items) any backend.
    ``normalizers`` (a decay in (0, 1); in fixed point 1 - 2**-s) ``sgd``; ``gain_decay``
    (the same kind) ``normalizers``; ``gain_payload_bits`` (8-24) ``normalizers`` on a
    fixed-point backend; ``gain_max`` (``G`` or ``LAYER=G`` items, G from 1 to
    ``floating.GAIN_MAX``) ``normalizers``;
    ``rounding_seed`` (>= 0) a fixed-point backend. ``average_window`` (>= 1 batch) any;
    ``average_every`` (1 .. ``average_window`` batches) ``average_window``. ``no_bias``
    (layer names; a repeat counts once) any. ``epoch_steps`` (>= 1; in fixed point a power
    of two) ``sgd``.
    """
    fixed = BACKENDS[backend].arithmetic != "float"
    if fixed and optimizer == "adam":
        raise LavaGleError(f"--optimizer adam runs in float only; backend {backend} learns "
                           "with the learning engine's own rule: use --optimizer sgd")
    if fixed and loss == "ce":
        raise LavaGleError(f"--loss ce (softmax) has no fixed-point form; backend {backend} "
                           "needs --loss mse (one-hot target rates)")
    out: dict[str, Any] = {}
    if fixed or optimizer is not None:
        out["optimizer"] = optimizer or "sgd"
    if fixed or loss is not None:
        out["loss"] = loss or "mse"
    if out.get("optimizer", "adam") != "sgd":
        for flag, value in (("--sgd-eta", sgd_eta), ("--halve-every", halve_every),
                            ("--eta-scale", eta_scale), ("--normalizers", normalizers),
                            ("--epoch-steps", epoch_steps)):
            if value is not None:
                raise LavaGleError(f"{flag} applies to the SGD rule; add --optimizer sgd")
    if target_rate is not None and out.get("loss") != "mse":
        raise LavaGleError("--target-rate sets the one-hot target rates of the MSE loss; add "
                           "--loss mse")
    if target_rate is not None and not target_rate > 0:
        raise LavaGleError(f"--target-rate {target_rate:g}: the target rate must be > 0")
    for flag, value in (("--formats", formats), ("--weight-tag-bits", weight_tag_bits),
                        ("--rounding-seed", rounding_seed)):
        if value is not None and not fixed:
            raise LavaGleError(f"{flag} applies to the fixed-point backends; backend "
                               f"{backend} is float (use --backend numpy-fixed)")
    if gain_decay is not None and normalizers is None:
        raise LavaGleError("--gain-decay sets the decay of the normalisers' gains; add "
                           "--normalizers")
    if gain_max:
        if normalizers is None:
            raise LavaGleError("--gain-max caps the normalisers' gains; add --normalizers")
        out["gain_max"] = parse_gain_caps(gain_max)
    if gain_payload_bits is not None:
        if not fixed:
            raise LavaGleError(f"--gain-payload-bits sets an integer width; backend {backend} "
                               "is float (use --backend numpy-fixed)")
        if normalizers is None:
            raise LavaGleError("--gain-payload-bits sets the width of the normalisers' "
                               "gained payloads; add --normalizers")
        _, low, high = NETWORK_OPTIONS["gain_payload_bits"]
        if not low <= gain_payload_bits <= high:
            raise LavaGleError(f"--gain-payload-bits {gain_payload_bits}: the width must be "
                               f"{low:g}-{high:g} bits (8: the learning payload itself)")
        out["gain_payload_bits"] = gain_payload_bits
    for flag, key, decay in (("--normalizers", "normalizer_decay", normalizers),
                             ("--gain-decay", "gain_decay", gain_decay)):
        if decay is None:
            continue
        if not 0 < decay < 1:
            raise LavaGleError(f"{flag} {decay:g}: the decay of the running averages must "
                               "be in (0, 1), e.g. 0.999")
        if fixed and decay_shift(decay) is None:  # now, not after the float twin
            raise LavaGleError(f"{flag} {decay!r}: the integers average with a shift, so the "
                               f"decay is 1 - 2**-s; use {nearest_shift_decay(decay)}")
        out[key] = decay
    if epoch_steps is not None and fixed and epoch_steps & (epoch_steps - 1):
        low = 1 << (epoch_steps.bit_length() - 1)
        raise LavaGleError(f"--epoch-steps {epoch_steps}: the integers average a learning "
                           f"epoch's payloads with a shift, so K is a power of two; use "
                           f"{low} or {2 * low}")
    if average_window is not None and not average_window >= 1:
        raise LavaGleError(f"--average-window {average_window:g}: the window is a number of "
                           "batches, at least 1 (1: the latest weights)")
    if average_every is not None:
        if average_window is None:
            raise LavaGleError("--average-every sets how often the weights' average is "
                               "updated; add --average-window")
        if not 1 <= average_every <= average_window:
            raise LavaGleError(f"--average-every {average_every}: the batches between the "
                               f"average's updates must be 1 to the window "
                               f"({average_window:g})")
    for key, value in (("batch", batch), ("sgd_eta", sgd_eta), ("halve_every", halve_every),
                       ("eta_scale", parse_eta_scales(eta_scale)), ("formats", formats),
                       ("weight_tag_bits", parse_weight_tags(weight_tag_bits)),
                       ("target_rate", target_rate),
                       ("error_bound", parse_error_bounds(error_bound)),
                       ("rounding_seed", rounding_seed), ("average_window", average_window),
                       ("average_every", average_every), ("epoch_steps", epoch_steps),
                       ("no_bias", sorted(set(no_bias)) if no_bias else None)):
        if value is not None:
            out[key] = value
    return out
