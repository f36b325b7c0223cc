"""Lava Processes of lava-gle (interfaces only: Vars, Ports and the equations).

One sub-package per process family, each with a ``process.py``:

- :mod:`~lava_gle.processes.gle`: GLE neuron populations and plastic projections
  (the structural network, one Lava Process per population and per projection);
- :mod:`~lava_gle.processes.stream`: the source that streams the input and target arrays;
- :mod:`~lava_gle.processes.network`: the whole network as one Process (fused model).

The ProcessModels live in :mod:`lava_gle.models` and are selected by
:func:`lava_gle.runtime.selection.run_config`. These packages hold no scripts and
have no import-time side effects, because Lava's compiler executes every module
in a Process's folder when it searches for models itself.
"""

from lava_gle.runtime.fork_safety import prepare_for_lava

prepare_for_lava()  # before any Lava import (see lava_gle.runtime.fork_safety)
