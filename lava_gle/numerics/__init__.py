"""GLE's numbers: the step functions in two arithmetics, the layer kernels, the engine.

- :mod:`~lava_gle.numerics.activations`: phi and phi' (float);
- :mod:`~lava_gle.numerics.floating` and :mod:`~lava_gle.numerics.fixed`: one Euler step
  of the model split at a Lava network's boundaries, in float and in Loihi-2-style
  integers (the single source of GLE arithmetic);
- :mod:`~lava_gle.numerics.compiled`: numba twins of the hot integer primitives (the same
  integers, faster), chosen by :mod:`~lava_gle.numerics.ops` (``LAVA_GLE_KERNELS``);
- :mod:`~lava_gle.numerics.kernels`: one layer's parameters and step in either
  arithmetic, which the engine and every Lava ProcessModel call;
- :mod:`~lava_gle.numerics.engine`: the one NumPy loop over kernels (batch axis);
  :mod:`~lava_gle.numerics.optim` its optimisers, :mod:`~lava_gle.numerics.streams` the
  checks of input and target streams;
- :mod:`~lava_gle.numerics.neuron_program`: the integer neuron step as a program in a
  Loihi-style instruction set, and tau_m's factors without a divide;
- :mod:`~lava_gle.numerics.fingerprint`: hashes of a run's integer continuation (which
  the checkpoints of fixed-point runs record) and of the whole integer arithmetic (which
  older ones recorded).

All functions broadcast over leading (batch) axes.
"""
