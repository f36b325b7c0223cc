"""ProcessModels of lava-gle's Processes (``lava_gle.processes``).

- :mod:`~lava_gle.models.base`: the arithmetic seam (:class:`~lava_gle.models.base.StepArithmetic`)
  and the abstract models holding all step logic (port order, state, recording, learning);
- :mod:`~lava_gle.models.floating`: ``@tag("floating_pt")`` CPU models, thin subclasses that
  declare float Lava types and plug in :mod:`lava_gle.arithmetic.floating`.

A fixed-point variant is a sibling module with ``@tag("fixed_pt")`` subclasses of the same
bases and its own :class:`~lava_gle.models.base.StepArithmetic`. Models are found by tag
(:func:`lava_gle.mappings.selection.find_models` scans every module of this package) and
handed to Lava's compiler explicitly, so this package need not sit next to the Processes.
"""

from lava_gle.forking import prepare_for_lava

prepare_for_lava()  # before any Lava import (see lava_gle.forking)
