"""From a network description to running Lava Processes, and onto Loihi 2 cores.

- :mod:`~lava_gle.mappings.selection`: find the ProcessModels of a tag and build the run config;
- :mod:`~lava_gle.mappings.builder`: create and connect the Processes (structural or fused);
- :mod:`~lava_gle.mappings.runtime`: start, run in chunks and always stop the Lava runtime;
- :mod:`~lava_gle.mappings.simulator`: :class:`LavaNetwork`, the Python front door.
- :mod:`~lava_gle.mappings.mapper`: the Loihi 2 resource mapper (NumPy only; see
  ``docs/mapping.md``).

Importing this package does not import Lava: :class:`LavaNetwork` is loaded on first
access, so the mapper works without starting Lava.
"""

__all__ = ["LavaNetwork"]


def __getattr__(name: str):
    if name == "LavaNetwork":
        from lava_gle.forking import prepare_for_lava
        prepare_for_lava()  # before any Lava import (see lava_gle.forking)
        from lava_gle.mappings.simulator import LavaNetwork
        return LavaNetwork
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
