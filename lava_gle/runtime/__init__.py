"""Running lava-gle's Processes in Lava: from layer kernels to a finished run.

- :mod:`~lava_gle.runtime.selection`: find the ProcessModels of a tag and build the run config;
- :mod:`~lava_gle.runtime.builder`: create and connect the Processes (structural or fused)
  around the network's layer kernels;
- :mod:`~lava_gle.runtime.control`: start, run in chunks and always stop the Lava runtime;
- :mod:`~lava_gle.runtime.simulator`: :class:`LavaNetwork`, the Python front door;
- :mod:`~lava_gle.runtime.shared_memory`: arrays the models and the host share (recordings,
  parameters) without ``Var.get``;
- :mod:`~lava_gle.runtime.fork_safety`: Lava's ``fork`` start method, and Lava processes that
  die with the host.

Importing this package does not import Lava (the Processes import its shared-memory
module); :class:`LavaNetwork` is loaded on first access.
"""

__all__ = ["LavaNetwork"]


def __getattr__(name: str):
    if name == "LavaNetwork":
        from lava_gle.runtime.fork_safety import prepare_for_lava
        prepare_for_lava()  # before any Lava import (see lava_gle.runtime.fork_safety)
        from lava_gle.runtime.simulator import LavaNetwork
        return LavaNetwork
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
