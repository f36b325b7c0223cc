"""A float run that produces NaN or inf stops with an error naming where, unless
allow_nan (issue #12: eta 1000 used to run to NaN silently, and compare blamed saturation)."""
from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest

from conftest import GoldenCase
from lava_gle.backends import simulate
from lava_gle.cli import main
from lava_gle.numerics.engine import Engine
from lava_gle.errors import DivergenceError
from lava_gle.traces import STATE_VARS, first_non_finite, load_traces

T = 200  # the eta-1000 case overflows after ~120 steps


def eta_1000() -> GoldenCase:
    case = GoldenCase("visible_mlp")
    case.net = dataclasses.replace(case.net,
                                   learning=dataclasses.replace(case.net.learning, eta=1000.0))
    case.inputs, case.targets = case.inputs[:T], case.targets[:T]
    return case


def first_bad_step(traces: dict, names) -> int:
    """First step at which any recorded state variable is NaN or inf (independent of
    lava_gle's own search), -1 if none."""
    bad = np.any([~np.isfinite(traces[f"{var}.{name}"]).reshape(len(traces["output"]), -1)
                  .all(axis=1) for name in names for var in STATE_VARS], axis=0)
    return int(np.argmax(bad)) if bad.any() else -1


def write_case(case: GoldenCase, tmp_path) -> list[str]:
    net = tmp_path / "net.json"
    raw = json.loads((case.dir / "network.json").read_text())
    raw["learning"]["eta"] = 1000.0
    net.write_text(json.dumps(raw))
    np.save(tmp_path / "x.npy", case.inputs)
    np.save(tmp_path / "y.npy", case.targets)
    return [str(net), "--inputs", str(tmp_path / "x.npy"), "--targets", str(tmp_path / "y.npy")]


def test_numpy_divergence_names_the_first_step_and_replaces_numpy_warnings():
    case = eta_1000()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DivergenceError, match=r"float run diverged: numpy produced "
                                                  r"-?(inf|nan) in .* at step \d+") as err:
            simulate(case.net, case.inputs, case.targets)
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    # the same run, let go on: its recorded state is finite up to the reported step and
    # turns non-finite within the next two (the error sent down reaches v, then u)
    eng = Engine(case.net, allow_nan=True)
    with pytest.warns(RuntimeWarning, match="continuing"):
        traces = eng.run(case.inputs, case.targets, record=True)
    d = err.value
    assert (d.layer, d.variable, d.step) == (eng.divergence.layer, eng.divergence.variable,
                                             eng.divergence.step)
    assert 0 < d.step < first_bad_step(traces, case.net.layer_names) <= d.step + 2
    assert not np.all(np.isfinite(traces["W.hidden"]))


def test_each_chunk_keeps_the_step_from_the_start_of_the_run():
    case = eta_1000()
    whole = Engine(case.net, allow_nan=True)
    chunked = Engine(case.net, allow_nan=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        whole.run(case.inputs, case.targets)
        for a in range(0, T, 50):
            chunked.run(case.inputs[a:a + 50], case.targets[a:a + 50])
    assert chunked.divergence.where() == whole.divergence.where()


def test_a_nan_that_raises_no_numpy_flag_is_found_at_the_end_of_the_run():
    """NaN arithmetic is quiet: a NaN weight set from outside shows in the traces."""
    case = GoldenCase("visible_mlp")
    eng = Engine(case.net)
    eng.weights[0][1, 0] = np.nan
    with pytest.raises(DivergenceError, match=r"nan in u\.hidden at step 0"):
        eng.run(case.inputs[:10], record=True)
    eng = Engine(case.net)
    eng.weights[0][1, 0] = np.nan
    with pytest.raises(DivergenceError, match=r"nan in W\.hidden by the end of the run"):
        eng.run(case.inputs[:10])


def test_overflow_that_leaves_the_state_finite_warns_as_numpy_would():
    class Overflowing:
        """Plain SGD on the local signals (GLE's own rule, as the kernels run it without
        an optimiser) that overflows on the side."""

        def __init__(self, lr: float):
            self.lr = lr

        def step(self, params, grads):
            np.exp(np.array([1000.0]))  # an overflow whose result is never used
            for key, g in grads.items():
                params[key] += self.lr * g

    case = GoldenCase("visible_mlp")
    net = case.net
    eng = Engine(net, optimizer=Overflowing(net.learning.eta))
    with pytest.warns(RuntimeWarning, match="overflow encountered in the float engine "
                                            r"\(the state stayed finite\)"):
        out = eng.run(case.inputs[:50], case.targets[:50], record=["r"])
    ref = Engine(net).run(case.inputs[:50], case.targets[:50], record=["r"])
    assert eng.divergence is None
    assert all(np.array_equal(out[k], ref[k]) for k in ref)


def test_simulate_cli_stops_with_the_error_and_allow_nan_writes_the_traces(tmp_path, capsys):
    case = eta_1000()
    args = ["simulate", *write_case(case, tmp_path), "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: float run diverged: numpy produced")
    assert "--allow-nan" in err and not (tmp_path / "a.npz").exists()
    with pytest.warns(RuntimeWarning, match="continuing"):
        assert main(args + ["--out", str(tmp_path / "b.npz"), "--allow-nan"]) == 0
    traces = load_traces(tmp_path / "b.npz")
    assert not np.all(np.isfinite(traces["e.out"])) and np.isfinite(traces["e.out"][0]).all()


def test_compare_names_the_diverged_float_run_instead_of_saturation(tmp_path, capsys):
    case = eta_1000()
    args = ["compare", *write_case(case, tmp_path), "--chunks", "4", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the fixed side's saturation
        assert main(args + ["--out", str(tmp_path / "a")]) == 2
        assert "error: float run diverged: numpy" in capsys.readouterr().err
        with pytest.warns(RuntimeWarning, match="continuing"):
            assert main(args + ["--out", str(tmp_path / "b"), "--allow-nan"]) == 0
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    d = m["divergence"]["numpy"]
    assert m["divergence"]["numpy-fixed"] is None and isinstance(d["step"], int)
    assert sum(m["saturation"]["numpy-fixed"].values()) > 0  # the old verdict's excuse
    assert m["verdicts"]
    for v in m["verdicts"]:
        assert v["cause"].startswith(f"float run diverged: numpy produced {d['value']} in "
                                     f"{d['variable']}.{d['layer']} at step {d['step']}")
    assert "float run diverged" in (tmp_path / "b" / "report.html").read_text()


def test_first_non_finite_prefers_the_earliest_step_then_layer_then_step_order():
    ok = np.zeros((4, 1, 2))
    late, early = ok.copy(), ok.copy()
    late[3, 0, 1], early[2, 0, 0] = np.inf, -np.inf
    traces = {"u.a": late, "e.b": early, "v.b": early.copy(), "W.a": np.full((2, 2), np.nan)}
    assert first_non_finite(traces, ["a", "b"]) == ("b", "v", 2, -np.inf)
    assert first_non_finite({"u.a": ok, "W.a": traces["W.a"]}, ["a"])[:3] == ("a", "W", None)
    assert first_non_finite({"u.a": ok}, ["a"]) is None


@pytest.mark.lava
def test_lava_float_divergence_is_an_error_naming_the_first_recorded_step():
    case = eta_1000()
    x, y = case.inputs[:130], case.targets[:130]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = Engine(case.net, allow_nan=True).run(x, y, record=True)
    first = first_bad_step(ref, case.net.layer_names)
    assert first > 0
    with pytest.raises(DivergenceError, match=rf"lava-float produced \S+ in \S+ at step "
                                              rf"{first};"):
        simulate(case.net, x, y, backend="lava-float")
    with pytest.warns(RuntimeWarning, match="continuing"):
        traces = simulate(case.net, x, y, backend="lava-float", allow_nan=True)
    assert first_bad_step(traces, case.net.layer_names) == first
