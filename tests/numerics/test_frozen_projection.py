"""A projection with ``eta_scale`` 0 does not learn (``Network.plastic``), in float and in
integers, under either timing and in Lava: its W and b stay as given while the others
learn, and the quantiser gives it no learning rule, so a chip runs none there."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from conftest import GoldenCase, with_normalisers
from lava_gle.backends import make_engine, simulate
from lava_gle.errors import LavaGleError
from lava_gle.numerics.optim import Adam
from lava_gle.quantize import QuantizationWarning, quantize_network


def frozen(net, index: int):
    """``net`` with the projection into layer ``index`` frozen, every layer with weight tags
    (so the frozen one's would be the first to move)."""
    return replace(net, layers=tuple(
        replace(layer, eta_scale=0.0 if i == index else layer.eta_scale,
                fixed_point={**layer.fixed_point, "weight_tag_bits": 7})
        for i, layer in enumerate(net.layers)))


def learned(net, backend: str, optimizer=None) -> list[dict[str, np.ndarray]]:
    """Each layer's W and b before and after learning the golden MLP's streams."""
    g = GoldenCase("visible_mlp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        engine = make_engine(net, backend, optimizer=optimizer)
    before = [{k: v.copy() for k, v in layer.parameters().items() if k in ("W", "b")}
              for layer in engine.kernels.layers]
    engine.run(g.inputs, g.targets, record=False)
    after = [{k: layer.parameters()[k] for k in ("W", "b")} for layer in engine.kernels.layers]
    return list(zip(before, after))


@pytest.mark.parametrize("backend", ["numpy", "numpy-fixed", "numpy-fixed-chip"])
@pytest.mark.parametrize("index", [0, 1])
@pytest.mark.parametrize("normalisers", [False, True])
def test_a_frozen_projection_keeps_its_parameters_while_the_others_learn(backend, index,
                                                                       normalisers):
    net = GoldenCase("visible_mlp").net
    net = frozen(with_normalisers(net) if normalisers else net, index)
    for i, (before, after) in enumerate(learned(net, backend)):
        for kind in ("W", "b"):
            if i == index:
                np.testing.assert_array_equal(after[kind], before[kind], err_msg=kind)
            else:
                assert not np.array_equal(after[kind], before[kind]), (i, kind)


@pytest.mark.parametrize("index", [0, 1])
def test_adam_leaves_a_frozen_projection_alone(index):
    """Adam normalises the signals it is given (a rate scale would not stop it): the frozen
    projection gives it none."""
    net = frozen(GoldenCase("visible_mlp").net, index)
    for i, (before, after) in enumerate(learned(net, "numpy", Adam(lr=1e-3))):
        assert np.array_equal(after["W"], before["W"]) == (i == index)
        assert np.array_equal(after["b"], before["b"]) == (i == index)


def test_adam_refuses_a_rate_scale_it_would_ignore():
    """Adam sets its own step sizes, so a scale other than 0 (frozen) or 1 would silently
    do nothing: the engine refuses it and names the layer."""
    net = GoldenCase("visible_mlp").net
    net = replace(net, layers=(replace(net.layers[0], eta_scale=0.1), *net.layers[1:]))
    name = net.layers[0].name
    with pytest.raises(LavaGleError, match=rf"eta_scale {{'{name}': 0.1}}.*Adam"):
        make_engine(net, "numpy", optimizer=Adam(lr=1e-3))
    make_engine(net, "numpy")  # GLE's own rule takes the scale


def test_the_quantiser_gives_a_frozen_projection_no_rule_and_no_tags():
    net = frozen(GoldenCase("visible_mlp").net, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        q = quantize_network(net)
    assert (q.layers[0].rule, q.layers[0].bias_rule, q.layers[0].tag_bits) == (None, None, 0)
    assert q.layers[1].rule is not None and q.layers[1].tag_bits == 7


@pytest.mark.lava
@pytest.mark.parametrize("index, lava_backend, twin_backend",
                         [(0, "lava-fixed", "numpy-fixed-chip"),
                          (1, "lava-fixed-exact", "numpy-fixed")])
def test_lava_fixed_learns_the_integers_of_its_twin_with_a_frozen_projection(
        index, lava_backend, twin_backend):
    """Lava's structural build (no learning epoch for the frozen projection, neurons with
    error normalisers sending no learning error there) gives the engine's integers."""
    g = GoldenCase("visible_mlp")
    net = frozen(with_normalisers(g.net), index)
    x, y = g.inputs[:40], g.targets[:40]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        twin = simulate(net, x, y, backend=twin_backend, record=["output", "e"])
        lava = simulate(net, x, y, backend=lava_backend, record=["output", "e"])
    keys = sorted(k for k in twin.keys() & lava.keys() if not k.startswith("sat."))
    assert {"W.hidden", "W.out"} <= set(keys)
    for k in keys:
        np.testing.assert_array_equal(lava[k], twin[k], err_msg=k)
    start = quantize_network(net).layers[index]
    np.testing.assert_array_equal(lava[f"W.{net.layers[index].name}"],
                                  start.w * 2.0 ** start.w_exp)


@pytest.mark.parametrize("timing", ["exact", "chip"])
def test_the_structural_lava_build_gives_a_frozen_projection_no_learning_epoch(tmp_path, timing):
    """No Process runs a learning epoch for a frozen projection, and its neurons send no
    learning error (they have an error normaliser here): only the other projection learns."""
    from lava_gle.numerics.kernels import FixedKernels
    from lava_gle.runtime.builder import build_structural
    g = GoldenCase("visible_mlp")
    net = frozen(with_normalisers(g.net), 1)
    net = replace(net, fixed_point={**net.fixed_point, "timing": timing})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuantizationWarning)
        kernels = FixedKernels(quantize_network(net))
    built = build_structural(kernels, g.inputs[:5, 0], g.targets[:5, 0],
                             directory=str(tmp_path), record=set())
    hidden, out = (built.layers[layer.name] for layer in net.layers)
    if timing == "chip":
        learns = [h.neurons.proc_params["synapses"].learning for h in (hidden, out)]
        assert out.backward.proc_params["learning"] is False
        assert out.backward.l_in.in_connections == []
    else:
        learns = [h.projection.proc_params["learning"] for h in (hidden, out)]
        assert out.projection.l_in.in_connections == []
    assert learns == [True, False]
    assert out.neurons.proc_params["sends_learning_error"] is False
