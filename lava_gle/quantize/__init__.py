"""Quantise a float GLE network description into Loihi-2-style integers.

:func:`quantize_network` derives every integer format, constant and parameter of
the fixed-point arithmetic (:mod:`lava_gle.numerics.fixed`) from the float
description, honouring its ``fixed_point:`` overrides, in named passes, one module each:
:mod:`.formats` (bit formats and exponents from value bounds), :mod:`.activation` (phi
and phi' tables), :mod:`.rules` (learning gains -> learning-engine constants),
:mod:`.tau` (integer tau_m learning), :mod:`.manifest` (a bundle's JSON manifest and
integer arrays) and :mod:`.network` (the pipeline). The formats are explained in
``docs/fixed-point.md``.

Settings the formats cannot hold raise :class:`QuantizationError` (or warn with
:class:`QuantizationWarning` when the run is still meaningful), naming the layer
and the number, before anything runs.

Example
-------
>>> from lava_gle import load_network
>>> from lava_gle.quantize import quantize_network
>>> q = quantize_network(load_network("tests/data/golden/visible_lagline/network.json"))
>>> q.layers[1].rate_bits, q.layers[1].w_exp
(19, -5)
"""
from lava_gle.quantize.activation import BOUNDED_PHI, SIGNED_PHI, WIDE_TOL
from lava_gle.quantize.formats import (
    ERROR_BITS_MIN, BiasTraceWarning, QuantizationError, QuantizationWarning, error_bits_for,
    quantize_factor, rate_bits_for, sent_error_bits_for, state_bits_for,
)
from lava_gle.quantize.network import QuantizedLayer, QuantizedNetwork, quantize_network
from lava_gle.quantize.tau import TAU_GROWTH

__all__ = ["BOUNDED_PHI", "ERROR_BITS_MIN", "SIGNED_PHI", "TAU_GROWTH", "WIDE_TOL",
           "BiasTraceWarning", "QuantizationError", "QuantizationWarning", "QuantizedLayer",
           "QuantizedNetwork", "error_bits_for", "quantize_factor", "quantize_network",
           "rate_bits_for", "sent_error_bits_for", "state_bits_for"]
