"""The JSON manifest and integer arrays of a quantised network (lava_gle.quantize.manifest)."""
import json

import numpy as np
import pytest

from lava_gle import load_network, network_from_dict
from lava_gle.description import network_to_dict
from lava_gle.quantize import quantize_network
from lava_gle.quantize.manifest import arrays, manifest

from conftest import GOLDEN


@pytest.fixture(scope="module")
def qnet():
    d = network_to_dict(load_network(GOLDEN / "visible_mlp" / "network.json"), True)
    d["learning"].update(enabled=True, eta=0.05, learn_tau=True, eta_tau=0.01, gamma=-0.3)
    return quantize_network(network_from_dict(d))


def test_manifest_is_strict_json_and_reads_back_equal(qnet):
    text = json.dumps(manifest(qnet), allow_nan=False)
    assert json.loads(text) == json.loads(json.dumps(qnet.manifest()))


def test_manifest_numbers_restate_the_formats(qnet):
    m = manifest(qnet)
    assert m["input"]["rate_bits"] == qnet.in_bits
    assert m["output"]["target_rate_bits"] == qnet.layers[-1].rate_bits
    for q, layer in zip(qnet.layers, m["layers"]):
        fmt = layer["formats"]
        assert fmt["error_trace_bits"] == q.e_bits - q.trace_shift
        assert fmt["error_trace_source"] == "error"
        assert fmt["error_trace_mantissa"] == q.trace_mant
        # the default rule, exact products: the doubled trace clips at 31, half its range
        assert fmt["learning_clip"] == pytest.approx(
            31 * 2.0 ** (q.trace_shift - q.e_bits) / q.trace_mant, rel=1e-15)
        for f in [*layer["factors"].values(), layer["gamma"], layer["learning"]["tau_m"]["gain"]]:
            mant = np.asarray(f["mantissa"], np.float64)
            assert np.allclose(f["value"], mant * 2.0 ** -f["shift"], rtol=0, atol=0)
        assert layer["gamma"]["negative"] is True
        rule = layer["learning"]["weights"]
        assert rule["gain_rel_error"] == pytest.approx(rule["gain"] / rule["gain_target"] - 1)
        act = layer["activation"]
        seg = act["segments"]
        if layer["phi"] in ("sigmoid", "tanh", "softplus"):  # a few constants, JSON-ready
            assert seg["starts"][0] == 0 and len(seg["coefficients"]) == len(seg["starts"])
        else:
            assert seg is None
        assert act["max_error_lsb"] == pytest.approx(act["max_error"] * 2.0 ** fmt["rate_bits"])


@pytest.mark.parametrize("products", ["compensated", "exact"])
def test_the_learning_clip_is_where_the_error_trace_clips(products):
    """``learning_clip`` (in the unit of the value the trace is taken from: the normalised
    error with an error normaliser) is the largest |value| the trace passes unclipped."""
    from lava_gle.numerics import fixed as X
    d = network_to_dict(load_network(GOLDEN / "visible_mlp" / "network.json"), True)
    d["learning"].update(enabled=True, eta=0.05, loss="mse")
    d["fixed_point"] = {"learning_products": products}
    d["layers"][0]["error_norm_decay"] = 0.9990234375
    q = quantize_network(network_from_dict(d))
    for ql, layer in zip(q.layers, manifest(q)["layers"]):
        fmt = layer["formats"]
        assert fmt["error_trace_source"] == ("normalised_error" if ql is q.layers[0]
                                             else "error")
        frac = X.NORM_FRAC if ql is q.layers[0] else ql.e_bits
        assert fmt["error_trace_bits"] == frac - ql.trace_shift
        # the clip value (top trace LSBs), and one trace LSB above it, through the trace
        top = 31 if products == "exact" else 63
        lsb = 2.0 ** ql.trace_shift / ql.trace_mant  # in LSB of the value's own format
        at = fmt["learning_clip"] * 2.0 ** frac
        assert at == pytest.approx(top * lsb, rel=1e-15)
        values = np.array([int(np.floor(at)), int(np.ceil((top + 1) * lsb))], np.int64)
        dither = np.zeros(1, np.int64) if ql.trace_shift > 0 else None
        for v, clipped in zip(values, (0, 1)):
            _, n = X.error_trace(np.array([v]), ql.trace_shift, dither, products == "exact",
                                 ql.trace_mant)
            assert n == clipped


def test_arrays_are_copies_of_the_layers_integers(qnet):
    a = arrays(qnet)
    for q in qnet.layers:
        assert np.array_equal(a[f"W.{q.name}"], q.w) and np.array_equal(a[f"b.{q.name}"], q.b)
    assert sorted(a) == sorted(f"{k}.{q.name}" for q in qnet.layers for k in "Wb")  # no tables
    first = qnet.layers[0]
    a[f"W.{first.name}"][...] = 0
    assert np.abs(first.w).max() > 0  # writing a bundle's arrays leaves the network intact
