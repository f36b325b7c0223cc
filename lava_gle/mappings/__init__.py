"""Onto Loihi 2 cores: the resource mapper, its report and estimates, the deployment bundle.

NumPy only (no Lava import): :mod:`~lava_gle.mappings.mapper` places a network's neurons and
synapses on cores and chips of a hardware profile (:mod:`~lava_gle.mappings.profiles`),
:mod:`~lava_gle.mappings.bundle` writes what the hardware path consumes, and
:mod:`~lava_gle.mappings.deploy` runs it where Intel's lava-loihi is installed (see
``docs/mapping.md``). Running Processes in Lava's CPU simulation is :mod:`lava_gle.runtime`.
"""
