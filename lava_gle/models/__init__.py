"""ProcessModels of lava-gle's Processes (``lava_gle.processes``).

- :mod:`~lava_gle.models.base`: the abstract models holding all step logic (port order,
  state, recording, learning) around the layer kernels of :mod:`lava_gle.numerics.kernels`;
- :mod:`~lava_gle.models.floating`: ``@tag("floating_pt")`` CPU models, thin subclasses that
  declare float Lava types (float kernels);
- :mod:`~lava_gle.models.fixed`: ``@tag("fixed_pt")`` CPU models, declaring integer Lava
  types (integer kernels).

Models are found by tag
(:func:`lava_gle.runtime.selection.find_models` scans every module of this package) and
handed to Lava's compiler explicitly, so this package need not sit next to the Processes.
"""

from lava_gle.runtime.fork_safety import prepare_for_lava

prepare_for_lava()  # before any Lava import (see lava_gle.runtime.fork_safety)
