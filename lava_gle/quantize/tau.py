"""Integer tau_m learning (``learning.learn_tau``): the format of T and its gain."""
from __future__ import annotations

import warnings

import numpy as np

from lava_gle.numerics import fixed as X
from lava_gle.network import Network
from lava_gle.quantize.formats import (FACTOR_TOLERANCE, QuantizationError,
                                       QuantizationWarning, quantize_factor, state_bits_for)

#: Factor by which a learned tau_m may outgrow the layer's largest initial one.
TAU_GROWTH = 16.0


def tau_learning(net: Network, tm: np.ndarray, tr: np.ndarray, e_bits: int, u_bits: int,
                 layer: str, tau_bits: int | None = None) -> X.TauLearning:
    """Formats of integer tau_m learning of one layer (``tm``, ``tr``: its tau_m, tau_r
    [n]): T in a 24-bit state with ``tau_bits`` fraction bits (None: those that hold
    ``TAU_GROWTH`` times the largest initial tau_m), and the gain of ``-e du`` (error
    format ``e_bits`` times potential format ``u_bits``) into T units."""
    if tau_bits is None:
        tau_bits = state_bits_for(TAU_GROWTH * float(max(tm.max(), net.tau_m_min)))
    scale = 2.0 ** tau_bits
    gain = quantize_factor(net.learning.eta_tau / net.dt * 2.0 ** (tau_bits - e_bits - u_bits),
                           "eta_tau / dt", layer, scale=True)
    t_init, n = X.to_fixed(tm, tau_bits, 0, X.STATE_MAX, what=f"layer {layer!r}: tau_m")
    if n:
        raise QuantizationError(f"layer {layer!r}: tau_m up to {tm.max():g} does not fit T's "
                                f"24-bit format with fixed_point.tau_bits {tau_bits} (at most "
                                f"{X.STATE_MAX * 2.0 ** -tau_bits:g}); lower tau_bits", layer)
    tau_r_num, _ = X.to_fixed(tr, tau_bits, what=f"layer {layer!r}: tau_r")
    return X.TauLearning(tau_bits=tau_bits, gain=gain, t_init=t_init,
                         t_min=max(1, int(round(net.tau_m_min * scale))),
                         dt_num=int(round(net.dt * scale)), tau_r_num=tau_r_num)


def check_tau_factors(tl: X.TauLearning, layer: str) -> None:
    """Warn when a factor the kernels derive from T (:func:`lava_gle.numerics.fixed.
    tau_factors`: 12-bit mantissas, one shift per layer) is more than 1 % off its exact
    ratio. The description's own time constants are checked by
    :func:`~lava_gle.quantize.formats.quantize_factor`, which refuses them; a learned
    spread (a trained network's T, ``fixed_point.tau_bits`` pinned) only warns, since
    the run it continues learned with these factors."""
    exact = {"dt_m": tl.dt_num / tl.t_init, "tau_r_m": tl.tau_r_num / tl.t_init,
             "tau_m_r": tl.t_init / tl.tau_r_num}
    off = []
    for name, f in X.tau_factors(tl.t_init, tl).items():
        rel = np.abs(f.value() / exact[name] - 1.0)
        worst = int(np.argmax(rel))
        if rel[worst] > FACTOR_TOLERANCE:
            off.append(f"{name} {100 * rel[worst]:.1f}% (neuron {worst})")
    if off:
        tau = tl.t_init * 2.0 ** -tl.tau_bits
        warnings.warn(f"layer {layer!r}: tau_m spans {tau.min():g}-{tau.max():g}, too wide "
                      "for the 12-bit factor mantissas with one shift per layer: "
                      f"{', '.join(off)} off, and the neurons' dynamics in integers that much "
                      "off the float model's", QuantizationWarning, stacklevel=4)
