"""Post-training calibration: fixed-point formats sized from a float run on real inputs.

The default quantisation (:func:`lava_gle.quantize.quantize_network`) sizes every
format from worst-case bounds of the description, because it must hold whatever
learning does to the weights. For a trained network about to be deployed, the ranges
the signals actually reach are known: run the float engine on calibration inputs
(typically a batch of training data) and size the input payload, each layer's rate
payload and its potential format from what was seen; with targets, each layer's error
format and error-trace range too. Options the description sets itself are kept.

Example
-------
>>> import numpy as np
>>> from lava_gle import load_network
>>> from lava_gle.calibration import calibrate
>>> net = load_network("tests/data/golden/visible_mlp/network.json")
>>> x = np.load("tests/data/golden/visible_mlp/inputs.npy")
>>> calibrate(net, x).fixed_point["input_range"] == float(np.abs(x).max())
True
"""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from lava_gle.description import LAYER_OPTIONS, check_network
from lava_gle.errors import LavaGleError
from lava_gle.numerics.engine import Engine
from lava_gle.numerics.fixed import ERR_TRACE_MAX
from lava_gle.network import Network
from lava_gle.numerics.streams import prepare_streams
from lava_gle.quantize import (
    BOUNDED_PHI, SIGNED_PHI, QuantizationError, QuantizationWarning, error_bits_for,
    quantize_network, rate_bits_for, sent_error_bits_for, state_bits_for,
)
from lava_gle.quantize.network import profile_widths

#: Room left above the largest potential (and error) seen (the rate formats already round
#: their range up to a power of two).
POTENTIAL_MARGIN = 2.0
#: Share of a layer's error values (|e| over every step and element) that an error trace
#: sized from data covers; the rest clip. A trace holds 63 levels a side: a range over the
#: rare largest errors (MNIST-1D's lower layers: the largest 80-200x the RMS) would leave
#: the typical ones less than a level.
ERROR_TRACE_QUANTILE = 0.99
#: Finest rate format a description accepts (``fixed_point.rate_bits``).
RATE_BITS_MAX = int(LAYER_OPTIONS["rate_bits"][2])


def calibrate(net: Network, x: np.ndarray, targets: np.ndarray | None = None) -> Network:
    """A copy of ``net`` whose ``fixed_point`` options fit the signals of ``x``.

    ``x``: calibration inputs [T, B, n_in] or [T, n_in] (float units), streamed from the zero state
    through the float engine with learning off. Sets ``input_range`` = max |x|, and per
    layer ``rate_bits`` from max |r| (unbounded phi only; sigmoid, hard_sigmoid and tanh
    keep their exact range; with ``targets``, the output layer's also so that its 24-bit
    rates, of twice the payload's range, hold the targets the rates learn towards) and
    ``u_bits`` from ``POTENTIAL_MARGIN`` * max(|u|, |u_prosp|),
    and so that ``POTENTIAL_MARGIN`` * max |W r_below| (the sum the dendritic accumulator
    holds; ``r`` times its gains for a layer with gains in a described ``normaliser_state``)
    fits ``accumulator_bits``. With ``targets`` (the loss's targets for ``x``, [T, B,
    n_out] for ``mse``), the errors they cause size the error formats too: ``error_bits``
    from ``POTENTIAL_MARGIN`` * max(|v|, |e|) and so that ``POTENTIAL_MARGIN`` * max |W^T e|
    from the layer above fits the accumulator, and ``error_trace_range`` from the
    :data:`ERROR_TRACE_QUANTILE` quantile of |e| (at least 63 LSBs of the error format;
    not set where every error is 0). A layer with an ``error_bound`` gets error bits that
    also hold the bound, and no ``error_trace_range``: the quantiser spans the bound, so
    the integers learn from the errors the float rule learns from; a layer with an error
    normaliser none either (the trace spans the normalised error). Options already in the
    description win. Learning settings are unchanged.
    """
    frozen = check_network(net).with_learning(enabled=False)
    x, targets = prepare_streams(frozen, x, targets)  # [T, in] too; shapes said as a run does
    errors = ["v", "e"] if targets is not None else []
    engine = Engine(frozen)
    tr = engine.run(x, targets, record=["u", "u_prosp", "r"] + errors)
    fp = dict(net.fixed_point)
    if "input_range" not in fp and not np.abs(x).max() > 0:
        raise LavaGleError("calibrate: the inputs are all zero, so they size no input format; "
                           "calibrate from inputs the network will see, or set "
                           "fixed_point.input_range")
    fp.setdefault("input_range", float(np.abs(x).max()))
    acc_bits = int(fp.get("accumulator_bits", profile_widths()[1]))
    below = x
    layers = []
    for i, layer in enumerate(net.layers):
        o = dict(layer.fixed_point)
        name = layer.name
        if layer.phi not in BOUNDED_PHI:
            r_max = float(np.abs(tr[f"r.{name}"]).max())
            if targets is not None and i == len(net.layers) - 1:  # the rates learn them;
                # above half (the format's top is one LSB below its range, and log2 would
                # round a one-ulp margin away)
                r_max = max(r_max, float(np.abs(targets).max()) / 2 * (1 + 2.0 ** -20))
            o.setdefault("rate_bits", min(rate_bits_for(r_max, layer.phi in SIGNED_PHI),
                                          RATE_BITS_MAX))
        u_max = float(max(np.abs(tr[f"u.{name}"]).max(), np.abs(tr[f"u_prosp.{name}"]).max()))
        acc_max = float(np.abs(below @ net.initial_weights(i).T).max())
        o.setdefault("u_bits", min(state_bits_for(POTENTIAL_MARGIN * u_max),
                                   state_bits_for(POTENTIAL_MARGIN * acc_max, acc_bits)))
        if errors:
            o = {**_error_options(net, i, tr, acc_bits), **o}
        layers.append(replace(layer, fixed_point=o))
        gain = engine.kernels.layers[i].gain  # a layer with gains sends g r
        below = tr[f"r.{name}"] if gain is None else tr[f"r.{name}"] * gain
    out = replace(net, fixed_point=fp, layers=tuple(layers))
    warn_silent_payloads(out, tr)
    return out


def warn_silent_payloads(net: Network, tr: dict[str, np.ndarray]) -> None:
    """Warn for each hidden layer whose recorded rates ``tr["r.<layer>"]`` all lie below
    half its payload's LSB in ``net``'s formats: it sends only zeros up, and the layers
    above see no input (bounded phi keep their range whatever the data; an unbounded one
    at the finest ``rate_bits``)."""
    with warnings.catch_warnings():  # the formats' own warnings come when the user quantises
        warnings.simplefilter("ignore", QuantizationWarning)
        try:
            q = quantize_network(net.with_learning(enabled=False))  # the rates' formats alone
        except QuantizationError:  # no fixed-point form (said when the user quantises)
            return
    for ql in q.layers[:-1]:
        r_max, lsb = float(np.abs(tr[f"r.{ql.name}"]).max()), ql.scale("r")
        if r_max < lsb / 2:
            warnings.warn(f"layer {ql.name!r}: its rates reach only {r_max:.3g}, below half "
                          f"the LSB {lsb:.3g} of its 8-bit payload ({ql.phi}), so it sends "
                          "only zeros in fixed point; scale the inputs (or weights) up",
                          QuantizationWarning, stacklevel=3)


def _error_options(net: Network, i: int, tr: dict[str, np.ndarray],
                   acc_bits: int) -> dict[str, float | int]:
    """``error_bits`` and ``error_trace_range`` of layer ``i`` from the recorded errors
    (see :func:`calibrate`)."""
    e = np.abs(tr[f"e.{net.layers[i].name}"])
    e_max = max(float(e.max()), float(np.abs(tr[f"v.{net.layers[i].name}"]).max()))
    bits = error_bits_for(POTENTIAL_MARGIN * e_max)
    if i + 1 < len(net.layers):  # W^T e of the layer above, summed by the accumulator
        eps = tr[f"e.{net.layers[i + 1].name}"] @ net.initial_weights(i + 1)
        bits = min(bits, sent_error_bits_for(POTENTIAL_MARGIN * float(np.abs(eps).max()),
                                             acc_bits))
    bound = net.layers[i].error_bound
    if bound is not None:  # e never exceeds it: the trace spans it (quantize_network)
        return {"error_bits": min(bits, error_bits_for(bound))}
    if net.layers[i].error_norm_decay is not None:  # the trace spans the normalised error
        return {"error_bits": bits}
    out: dict[str, float | int] = {"error_bits": bits}
    trace_range = float(np.quantile(e, ERROR_TRACE_QUANTILE))
    if trace_range > 0:  # no finer than 63 of the error format's LSBs
        out["error_trace_range"] = max(trace_range, ERR_TRACE_MAX * 2.0 ** -bits)
    return out
