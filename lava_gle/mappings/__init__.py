"""From a network description to running Lava Processes.

- :mod:`~lava_gle.mappings.selection`: find the ProcessModels of a tag and build the run config;
- :mod:`~lava_gle.mappings.builder`: create and connect the Processes (structural or fused);
- :mod:`~lava_gle.mappings.runtime`: start, run in chunks and always stop the Lava runtime;
- :mod:`~lava_gle.mappings.simulator`: :class:`LavaNetwork`, the Python front door.

Importing this package imports Lava.
"""
from lava_gle.mappings.simulator import LavaNetwork

__all__ = ["LavaNetwork"]
