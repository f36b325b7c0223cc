"""Subcommands of the ``lava-gle`` CLI, one module each (see :mod:`lava_gle.cli`)."""
