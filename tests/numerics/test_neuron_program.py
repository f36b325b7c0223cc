"""The neuron step as an instruction-set program: bit-exact with numpy-fixed's step."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lava_gle import network_from_dict
from lava_gle.numerics import fixed as X
from lava_gle.numerics.neuron_program import PUBLIC_OPS, execute, neuron_program, unsupported_ops
from lava_gle.quantize import QuantizationWarning, quantize_network

PHIS = ["linear", "relu", "hard_sigmoid", "tanh", "sigmoid", "softplus"]


def layer_constants(phi: str, prospective: bool, gamma: float, top: bool):
    """Neuron constants of the hidden (``top=False``) or output layer of a small network
    with per-neuron time constants."""
    net = network_from_dict({
        "gle_network": 1, "dt": 0.01, "input": {"size": 2},
        "layers": [{"name": "h", "size": 3, "tau_m": [1.0, 0.7, 2.0], "tau_r": [0.1, 0.2, 0.3],
                    "phi": phi, "init": {"seed": 1}},
                   {"name": "o", "size": 3, "tau_m": 0.5, "tau_r": 0.05, "phi": phi,
                    "init": {"seed": 2}}],
        "learning": {"enabled": False, "gamma": gamma, "beta": 0.1,
                     "prospective_errors": prospective}})
    return quantize_network(net).layers[1 if top else 0].consts


CASES = [(phi, prosp, gamma, top) for phi in PHIS for prosp in (True, False)
         for gamma in (0.0, 1.0, -0.5) for top in (False, True)]


@settings(max_examples=40, deadline=None)
@given(case=st.sampled_from(CASES), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([10, 2**16, 2**23, 2**26]), bounded=st.booleans())
def test_program_equals_the_fixed_neuron_step(case, seed, scale, bounded):
    """Every register and every saturation count, on random states (including values that
    saturate: scale 2**26 exceeds the 24-bit state), with an error bound or without."""
    c = layer_constants(*case)
    rng = np.random.default_rng(seed)
    if bounded:
        c = dataclasses.replace(c, e_max=int(rng.integers(1, min(scale, X.STATE_MAX))))
    u, v, s, d = (rng.integers(-scale, scale, size=(4, 3)) for _ in range(4))
    g = rng.integers(0, X.GATE_ONE + 1, size=(4, 3))
    expected, counts = X.neuron_step(u, v, g, s, d, c)
    regs, got_counts = execute(neuron_program(c), dict(u=u, v=v, g=g, s=s, d=d))
    for name, reg in (("u", "u_new"), ("u_prosp", "u_prosp"), ("p", "p"), ("g", "g_new"),
                      ("v", "v_new"), ("e", "e")):
        np.testing.assert_array_equal(regs[reg], getattr(expected, name), err_msg=name)
    assert tuple(got_counts[v] for v in X.NEURON_SAT_VARS) == counts


def test_the_program_clamps_the_euler_operand_along_a_tau_learning_run():
    """Every neuron step of a run whose gamma feedback clamps du while tau_m learns, run
    again as the program on the same registers: the same integers and counts, the clamped
    du times every mantissa of dt/tau_m and tau_r/tau_m fits 37 bits where the unclamped
    one does not, and the bound stays the same constant while tau_m learns (the chip
    divides for the factors, not for the bound)."""
    from conftest import clamping_network
    from lava_gle.numerics import ops
    from lava_gle.numerics.engine import FixedEngine
    net, x, y = clamping_network()
    limit = 2 ** 36  # 37-bit products, sign included
    seen = {"steps": 0, "clamped": 0, "overflow": 0, "beyond": 0, "bounds": set(),
            "mants": set()}

    def step_and_program(u, v, g, s, d, c):
        state, counts = X.neuron_step(u, v, g, s, d, c)
        regs, got = execute(neuron_program(c), dict(u=u, v=v, g=g, s=s, d=d))
        for name, reg in (("u", "u_new"), ("u_prosp", "u_prosp"), ("p", "p"),
                          ("g", "g_new"), ("v", "v_new"), ("e", "e")):
            np.testing.assert_array_equal(regs[reg], getattr(state, name), err_msg=name)
        assert tuple(got[k] for k in X.NEURON_SAT_VARS) == counts
        mants = np.stack([np.broadcast_to(f.mant, u.shape[-1]) for f in (c.dt_m, c.tau_r_m)])
        assert c.du_max == (limit - 1) >> X.FACTOR_BITS
        assert np.abs(regs["du"][..., None, :] * mants).max() < limit
        fb = X.shift_round(regs["e"] * c.gamma.mant, c.gamma.shift)
        raw = s - u + (-fb if c.gamma_negative else fb)
        seen["overflow"] += int(np.count_nonzero(np.abs(raw) * mants.max() >= limit))
        seen["beyond"] += int(np.count_nonzero(np.abs(raw) > c.du_max))
        seen["mants"].add(int(mants.max()))
        seen["steps"] += 1
        seen["clamped"] += dict(zip(X.NEURON_SAT_VARS, counts))["du"]
        seen["bounds"].add(c.du_max)
        return state, counts

    with ops.using("numpy"), pytest.warns(QuantizationWarning, match=r"du\.h=.*du\.out="):
        ops.neuron_step = step_and_program  # restored when the block ends
        traces = FixedEngine(net, dequantize=False).run(x, y, record=True)
    assert seen["steps"] == 2 * len(x)
    assert seen["clamped"] == int(traces["sat.du.h"]) + int(traces["sat.du.out"]) > 0
    assert seen["beyond"] == seen["clamped"]  # a clamp exactly where |du| exceeds the bound
    assert 0 < seen["overflow"] <= seen["clamped"]  # every would-be overflow is clamped
    assert len(seen["mants"]) > 2 and len(seen["bounds"]) == 1  # tau_m learns; bound fixed


@pytest.mark.parametrize("phi", PHIS)
@pytest.mark.parametrize("top", [False, True])
def test_every_activation_runs_on_public_operations_only(phi, top):
    """No table read: sigmoid, tanh and softplus are segments (abs, compares, selects,
    multiplies); an 8-bit hidden layer's step stays a short program, the 24-bit output's
    polynomials are longer."""
    program = neuron_program(layer_constants(phi, True, 1.0, top))
    assert unsupported_ops(program) == []
    assert {i.op for i in program.instrs} <= PUBLIC_OPS
    assert 12 <= len(program) <= (140 if top else 100)  # printed by `microcode`


def test_microcode_prints_each_layers_neuron_program(capsys):
    from lava_gle.cli import main
    from conftest import GOLDEN
    assert main(["microcode", str(GOLDEN / "visible_lagline" / "network.json")]) == 0
    out = capsys.readouterr().out
    # prospective errors and gamma 1: 14 arithmetic instructions + the softplus segments
    assert "no public Loihi 2 counterpart" not in out
    assert "[out] neuron step: " in out and "abs    a        u_prosp" in out
    assert "mulsr  i        g d 12" in out


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("case", [c for c in CASES if not c[3]][::5])
def test_the_mappers_count_is_the_real_programs_length(case, bounded):
    """program_shape (what `map` counts without quantising) has as many instructions as
    the program of the real constants, and the same unsupported ones (a negative gamma
    only turns an add into a sub; an error bound adds a clip)."""
    from lava_gle.numerics.neuron_program import program_shape
    phi, prospective, gamma, _ = case
    real_consts = layer_constants(*case)
    if bounded:
        real_consts = dataclasses.replace(real_consts, e_max=1000)
    real = neuron_program(real_consts)
    act = real_consts.phi
    shape = program_shape(phi, prospective, gamma != 0, act.rate_bits, False, act.u_bits,
                          bounded_error=bounded)
    assert len(shape) == len(real) and unsupported_ops(shape) == unsupported_ops(real)


def test_map_reports_instructions_per_step(tmp_path, capsys):
    import json
    from lava_gle.cli import main
    from conftest import REPO
    assert main(["map", str(REPO / "examples" / "mlp.yaml"), "--json"]) == 0
    prog = json.loads(capsys.readouterr().out)["totals"]["neuron_program"]
    sizes = {"hidden": 8, "out": 2}
    assert prog["instructions_per_step"] == sum(prog["instructions_per_neuron"][n] * k
                                                for n, k in sizes.items())
    assert prog["without_public_counterpart"] == {}  # tanh hidden layer: segments


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 4), num_bits=st.integers(0, 24), den_bits=st.integers(0, 24),
       seed=st.integers(0, 2**32 - 1), scalar=st.booleans(), power=st.booleans())
def test_tau_factors_without_a_divide_equal_the_engines(n, num_bits, den_bits, seed, scalar,
                                                        power):
    """The division-free factor (shift by leading bits, restoring division) gives the
    engine's factor for every input, ratios at exact powers of two included."""
    from lava_gle.numerics.neuron_program import factor_ratio_without_divide
    rng = np.random.default_rng(seed)
    den = rng.integers(1, 2 ** den_bits + 1, size=n)
    num = rng.integers(1, 2 ** num_bits + 1, size=() if scalar else n)
    if power:  # num / den exactly a power of two, or one below it
        num = den * 2 ** (num_bits % 8) - rng.integers(0, 2, size=n)
        num = np.maximum(num, 1)
    got, want = factor_ratio_without_divide(num, den), X.factor_ratio(num, den)
    assert got.shift == want.shift
    np.testing.assert_array_equal(got.mant, want.mant)


def test_restoring_division_is_floor_division_and_saturates():
    from lava_gle.numerics.neuron_program import divide, floor_log2
    n = np.array([0, 1, 7, 8191, 8192, 10**9, 12345])
    d = np.array([1, 3, 7, 1, 1, 3, 1000])
    np.testing.assert_array_equal(divide(n, d, 13), np.minimum(n // d, 8191))
    x = np.array([1, 2, 3, 4, 2**23 - 1, 2**23, 2**40 + 5])
    np.testing.assert_array_equal(floor_log2(x), [0, 1, 1, 2, 22, 23, 40])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.sampled_from([2**8, 2**16, 2**23]),
       start=st.sampled_from([0, 3, 1000]))
def test_the_normaliser_program_equals_the_kernels_normalisers(seed, scale, start):
    """Step after step on random rates and errors, from the prior or from a described
    state: the program's mean squares, gains, payloads (clip counts too), errors from
    above and learning errors are the kernel's (``FixedLayer``), for a layer with both
    normalisers and for the output layer's error normaliser alone."""
    from conftest import SHIFT_DECAY, GoldenCase, with_normalisers
    from lava_gle.network import NormaliserState
    from lava_gle.numerics.engine import FixedEngine
    from lava_gle.numerics.neuron_program import normaliser_program, normaliser_registers
    rng = np.random.default_rng(seed)
    net = with_normalisers(GoldenCase("visible_mlp").net, SHIFT_DECAY, SHIFT_DECAY)
    if start:  # a described state: mean squares of a few LSB up to 2**40 LSB**2
        sizes = [layer.size for layer in net.layers]
        net = dataclasses.replace(net, layers=tuple(
            dataclasses.replace(layer, normaliser_state=NormaliserState(
                start, None if layer.gain_decay is None else rng.uniform(0, 2 ** -6, n),
                rng.uniform(1e-9, 1e-3, n)))
            for layer, n in zip(net.layers, sizes)))
    engine = FixedEngine(net)
    for k in engine.kernels.layers:
        nf, n = k.norm, k.size
        program = normaliser_program(nf, k.ql.rate_signed)
        regs = {"gamma": np.full(n, 1 << X.GAIN_FRAC) if k.gamma is None else k.gamma.copy(),
                **normaliser_registers(int(k.norm_steps), nf, n)}
        registers = {"gain_ms": "ms_r", "error_ms": "ms_e"}
        for kind, reg in registers.items():
            if getattr(k, kind) is not None:
                regs[reg] = getattr(k, kind).copy()
        for _ in range(40):
            d, p, e = (rng.integers(-scale, scale, n) for _ in range(3))
            regs.update(d=d, p=p, e=e)
            regs, counts = execute(program, regs)
            dg, n_dg = X.gain_error(d, k.gamma, X.GAIN_FRAC) if k.gamma is not None else (
                None, 0)
            st = X.FixedNeuronState(p, p, p, p, e, e)
            k.adapt(st)
            for kind, reg in registers.items():
                if getattr(k, kind) is not None:
                    np.testing.assert_array_equal(regs[reg], getattr(k, kind), err_msg=reg)
            n_q = 0
            if k.gamma is not None:
                np.testing.assert_array_equal(regs["dg"], dg)
                np.testing.assert_array_equal(regs["gamma"], k.gamma)
                before = engine.saturation.get(f"q.{k.name}", 0)
                np.testing.assert_array_equal(regs["q"], k.rate(st))
                n_q = engine.saturation.get(f"q.{k.name}", 0) - before
            assert counts["q"] == n_dg + n_q
            np.testing.assert_array_equal(regs["l"], k.learning_error(e))


def test_microcode_prints_the_normalisers_program(tmp_path, capsys):
    """With learning, a layer with gains and an error normaliser runs all four operations
    without a public counterpart; the output layer (error normaliser only) three."""
    from lava_gle.cli import main
    from lava_gle.description import save_network
    from conftest import SHIFT_DECAY, GoldenCase, with_normalisers
    save_network(with_normalisers(GoldenCase("visible_mlp").net, SHIFT_DECAY, SHIFT_DECAY),
                 tmp_path / "net.json")
    assert main(["microcode", str(tmp_path / "net.json")]) == 0
    out = capsys.readouterr().out
    assert ("[hidden] normalisers: 27 instructions per neuron and step; no public Loihi 2 "
            "counterpart: mulsv, mulw, rsqrt, rsqrtf") in out
    assert ("[out] normalisers: 12 instructions per neuron and step; no public Loihi 2 "
            "counterpart: mulsv, mulw, rsqrtf") in out
    assert "rsqrt  gamma    ms_r" in out


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.integers(-3, 12),
       mant=st.sampled_from([1, 9, 12, 15]), doubled=st.booleans(),
       scale=st.sampled_from([1, 2**8, 2**16, 2**23]))
def test_the_trace_program_equals_the_error_trace(seed, shift, mant, doubled, scale):
    """The neuron's trace program (mantissa, dither, floor shift, clip, third factors, bAP)
    gives error_trace's e_q and clip count bit for bit, with the engine's dither."""
    from lava_gle.numerics.neuron_program import trace_program
    rng = np.random.default_rng(seed)
    n = 64
    l = rng.integers(-scale, scale + 1, n, dtype=np.int64)
    dither = X.trace_dither(seed % 1000, 1, 7, n, shift)
    e_q, clips = X.error_trace(l, shift, dither, doubled, mant)
    regs = {"l": l} | ({"dither": dither} if dither is not None else {})
    program = trace_program(shift, mant, doubled)
    out, counts = execute(program, regs)
    np.testing.assert_array_equal(out["e_q"], e_q)
    assert counts["trace"] == clips
    np.testing.assert_array_equal(out["y2"] - out["y3"], e_q)
    assert (out["y2"] >= 0).all() and (out["y3"] >= 0).all()
    np.testing.assert_array_equal(out["bap"], (e_q != 0).astype(np.int64))
    assert unsupported_ops(program) == []


def test_the_trace_program_needs_its_random_bits():
    from lava_gle.numerics.neuron_program import trace_program
    with pytest.raises(ValueError, match="input register 'dither'"):
        execute(trace_program(4), {"l": np.zeros(3, np.int64)})


def test_the_mapper_counts_the_error_trace_where_the_projection_into_a_layer_learns():
    """The trace program (the most instructions it takes) is counted in a layer whose
    projection learns; a frozen layer and a network that does not learn form no trace."""
    from dataclasses import replace
    from lava_gle.mappings.mapper import map_network
    from lava_gle.mappings.report import build_report
    from lava_gle.numerics.neuron_program import trace_program, trace_shape
    from conftest import GoldenCase
    net = GoldenCase("visible_mlp").net
    frozen = replace(net, layers=tuple(replace(l, eta_scale=0.0) if l.name == "hidden" else l
                                       for l in net.layers))
    still = replace(net, learning=replace(net.learning, eta=0.0))
    progs = [build_report(map_network(n)).totals["neuron_program"]
             for n in (net, frozen, still)]
    k = len(trace_shape())
    assert [p["trace_instructions_per_neuron"] for p in progs] == [
        {"hidden": k, "out": k}, {"out": k}, {}]
    assert progs[0]["instructions_per_neuron"]["hidden"] - k == \
        progs[1]["instructions_per_neuron"]["hidden"]
    # the shape bounds every real trace program
    assert k == max(len(trace_program(s, m, d)) for s in (-1, 0, 5) for m in (1, 9)
                    for d in (False, True))


def test_microcode_prints_each_learning_layers_error_trace(capsys):
    import json
    """The README example's layers learn at gains between powers of two: their trace
    programs multiply by the quantiser's mantissa and shift by its trace shift."""
    from lava_gle.cli import main
    from lava_gle.description import load_network
    from conftest import REPO
    path = REPO / "examples" / "mlp.yaml"
    q = quantize_network(load_network(path))
    assert main(["microcode", str(path)]) == 0
    out = capsys.readouterr().out
    for ql in q.layers:
        assert ql.trace_mant != 1
        assert (f"[{ql.name}] error trace: 11 instructions per neuron and step\n"
                f"  mulsr  x        l {ql.trace_mant} 0\n"
                f"  rand   dither   {ql.trace_shift}\n") in out
    assert main(["microcode", str(path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["trace_programs"]
    assert {name: len(p["instructions"]) for name, p in listed.items()} == {
        ql.name: 11 for ql in q.layers}
