"""The single source of GLE arithmetic.

:mod:`~lava_gle.arithmetic.activations` holds phi and phi', and
:mod:`~lava_gle.arithmetic.floating` the floating-point step functions. The NumPy
engine and every Lava ProcessModel call these functions; no other module
implements GLE dynamics. All functions broadcast over leading (batch) axes, so a
Lava model calls them on ``[n]`` vectors and the engine on ``[batch, n]`` arrays.
"""
