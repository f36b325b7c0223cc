"""Make ``import lava`` work after something already chose a multiprocessing start method.

Lava's runtime module calls ``multiprocessing.set_start_method('fork')`` (without
``force``) when it is imported, which raises ``RuntimeError: context has already been
set`` if anything fixed the start method first, even to ``fork``. tqdm does, by
creating its multiprocessing lock on the first progress bar. The Lava-facing packages
of lava-gle call :func:`prepare_for_lava` before importing Lava.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.context
import sys

from lava_gle.errors import LavaGleError


def prepare_for_lava() -> None:
    """Let Lava's import set the ``fork`` start method; refuse any other method clearly.

    Idempotent. If the method is already ``fork`` it is un-set, so Lava's own call sets
    the same method again; ``spawn``/``forkserver`` raise :class:`LavaGleError`.
    """
    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return  # Lava is imported already: it set 'fork' itself
    method = multiprocessing.get_start_method(allow_none=True)
    if method is None:
        return
    if method != "fork":
        raise LavaGleError(
            f"Lava needs the 'fork' multiprocessing start method, but this program already "
            f"set {method!r}; call multiprocessing.set_start_method('fork', force=True) "
            f"before using lava-gle's Lava backends")
    multiprocessing.context._default_context._actual_context = None
