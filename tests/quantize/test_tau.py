"""Integer tau_m learning formats (lava_gle.quantize.tau)."""
import warnings

import numpy as np
import pytest

from lava_gle import network_from_dict
from lava_gle.quantize import QuantizationError, QuantizationWarning, quantize_network
from lava_gle.quantize.tau import TAU_GROWTH, tau_learning


def _net(tau_m_min=None):
    learning = {"enabled": True, "eta": 0.1, "learn_tau": True, "eta_tau": 0.02}
    if tau_m_min is not None:
        learning["tau_m_min"] = tau_m_min
    return network_from_dict({"gle_network": 1, "dt": 0.05, "input": {"size": 1},
                              "layers": [{"size": 3, "tau_m": [0.5, 1.0, 3.0], "tau_r": 0.2}],
                              "learning": learning})


def test_tau_state_holds_the_growth_of_the_largest_tau_in_24_bits():
    net = _net()
    tm, tr = net.layers[0].tau_m_array(), net.layers[0].tau_r_array()
    t = tau_learning(net, tm, tr, 16, 14, "a")
    top = TAU_GROWTH * 3.0  # 48 -> needs 6 integer bits of 23
    assert t.tau_bits == 17 and top * 2.0 ** t.tau_bits <= 2 ** 23
    assert t.t_init.tolist() == [round(x * 2 ** 17) for x in (0.5, 1.0, 3.0)]
    assert t.dt_num == round(0.05 * 2 ** 17) and t.tau_r_num.tolist() == [round(0.2 * 2 ** 17)] * 3
    assert t.t_min == round(net.tau_m_min * 2 ** 17)


def test_a_pinned_tau_format_is_kept_and_must_hold_tau_m():
    """``tau_bits`` given (a trained run's description pins it) sets T's format; a tau_m
    that T's 24 bits cannot hold there is refused, naming the option."""
    net = _net()
    tm, tr = net.layers[0].tau_m_array(), net.layers[0].tau_r_array()
    assert tau_learning(net, tm, tr, 16, 14, "a", tau_bits=20).t_init.tolist() == \
        [round(x * 2 ** 20) for x in (0.5, 1.0, 3.0)]
    with pytest.raises(QuantizationError, match="tau_m up to 3 .*fixed_point.tau_bits 22"):
        tau_learning(net, tm, tr, 16, 14, "a", tau_bits=22)


def test_tau_gain_turns_error_times_potential_into_tau_lsb():
    net = _net(tau_m_min=0.1)
    tm, tr = net.layers[0].tau_m_array(), net.layers[0].tau_r_array()
    e_bits, u_bits = 16, 14
    t = tau_learning(net, tm, tr, e_bits, u_bits, "a")
    want = 0.02 / 0.05 * 2.0 ** (t.tau_bits - e_bits - u_bits)
    assert float(t.gain.value()) == pytest.approx(want, rel=2.0 ** -11)
    assert t.t_min == round(0.1 * 2 ** t.tau_bits)
    assert np.all(t.t_init >= t.t_min)


def _spread_net(tau_m, fixed_point=None):
    layer = {"size": 2, "tau_m": tau_m, "tau_r": 0.5}
    if fixed_point:
        layer["fixed_point"] = fixed_point
    return network_from_dict({"gle_network": 1, "dt": 0.05, "input": {"size": 1},
                              "layers": [layer], "learning": {
                                  "enabled": True, "eta": 0.1, "learn_tau": True,
                                  "eta_tau": 0.02}})


def test_a_learned_tau_spread_the_factor_shift_cannot_hold_warns_and_a_described_one_is_refused():
    """tau_m 0.125 and 400 (dt 0.05, tau_r 0.5): dt/tau_m 0.4 and 0.000125 share the shift
    13, so the slow neuron's mantissa is round(1.024) = 1, 2.3 % off; tau_r/tau_m 4 and
    0.00125 share the shift 9, round(0.64) = 1, 56.2 % off. A description with these
    time constants is refused; a trained network's (T pinned by ``fixed_point.tau_bits``,
    as ``Engine.network`` writes it) quantises, with a warning naming the layer, the
    factors and the neurons. A spread the shift holds says nothing."""
    with pytest.raises(QuantizationError, match="dt/tau_m"):
        quantize_network(_spread_net([0.125, 400.0]))
    with pytest.warns(QuantizationWarning, match=r"layer 'layer0': tau_m spans 0\.125-400, .*"
                                                 r": dt_m 2\.3% \(neuron 1\), tau_r_m 56\.2% "
                                                 r"\(neuron 1\) off"):
        quantize_network(_spread_net([0.125, 400.0], {"tau_bits": 14}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", QuantizationWarning)
        quantize_network(_spread_net([0.5, 2.0], {"tau_bits": 14}))
