"""The hot integer primitives every fixed-point kernel calls, compiled or NumPy: one switch.

The fixed-point kernels (:mod:`lava_gle.numerics.kernels`) call ``ops.forward_drive``,
``ops.backward_error``, ``ops.neuron_step``, ``ops.learn_projection``,
``ops.carry_tags``, ``ops.transpose_drift``, ``ops.output_error`` and the normalisers'
``ops.update_mean_square``, ``ops.inverse_rms``, ``ops.error_normaliser``,
``ops.normalised_error``, ``ops.gain_payload`` and ``ops.gain_error``. These are the
compiled twins of :mod:`lava_gle.numerics.compiled` (``numba``, the default) or the NumPy
reference of :mod:`lava_gle.numerics.fixed` (``numpy``); both give the same integers.
The environment variable ``LAVA_GLE_KERNELS`` (``numba`` or ``numpy``) picks one for a
process, read when a kernel first calls a primitive; :func:`use` and :func:`using`
switch in code (tests compare the two). A Lava run's forked processes keep the host's
choice.

Without numba installed the default is the NumPy reference, with a warning.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from typing import Iterator

from lava_gle.errors import LavaGleError

#: Environment variable that picks the implementation.
ENV = "LAVA_GLE_KERNELS"
#: The implementations: the compiled twins and the NumPy reference.
IMPLEMENTATIONS = ("numba", "numpy")
#: The primitives this module dispatches.
PRIMITIVES = ("forward_drive", "backward_error", "neuron_step", "learn_projection",
              "carry_tags", "transpose_drift", "output_error", "update_mean_square",
              "inverse_rms", "error_normaliser", "normalised_error", "gain_payload",
              "gain_error")

_current: str | None = None


def _default() -> str:
    name = os.environ.get(ENV, "").strip().lower()
    if name and name not in IMPLEMENTATIONS:
        raise LavaGleError(f"{ENV}={os.environ[ENV]!r} is not an implementation of the "
                           f"fixed-point kernels; use one of {', '.join(IMPLEMENTATIONS)} "
                           "(or unset it)")
    if name:
        return name
    if importlib.util.find_spec("numba") is None:
        warnings.warn("numba is not installed: the fixed-point kernels run the NumPy "
                      f"reference (slower; `pip install numba`, or set {ENV}=numpy to "
                      "silence this)", RuntimeWarning, stacklevel=4)
        return "numpy"
    return "numba"


def use(name: str | None = None) -> str:
    """Make ``name`` (``numba`` or ``numpy``; None: ``LAVA_GLE_KERNELS`` or the default)
    the implementation every fixed-point kernel calls from now on; returns the previous
    one (None if none was chosen yet)."""
    global _current
    name = _default() if name is None else name
    if name not in IMPLEMENTATIONS:
        raise LavaGleError(f"fixed-point kernels {name!r}: use one of "
                           f"{', '.join(IMPLEMENTATIONS)}")
    if name == "numba":
        if importlib.util.find_spec("numba") is None:
            raise LavaGleError(f"the compiled fixed-point kernels need numba (`pip install "
                               f"numba`), or set {ENV}=numpy for the NumPy reference")
        from lava_gle.numerics import compiled as impl
    else:
        from lava_gle.numerics import fixed as impl
    globals().update({f: getattr(impl, f) for f in PRIMITIVES})
    previous, _current = _current, name
    return previous


def current() -> str:
    """The implementation in use (chosen now if none was yet)."""
    if _current is None:
        use()
    return _current


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """Run the block with the implementation ``name``, then restore the previous one."""
    previous = use(name)
    try:
        yield
    finally:
        use(previous)


def __getattr__(attr: str):
    """The first access to a primitive picks the implementation (:func:`use`)."""
    if attr in PRIMITIVES:
        use()
        return globals()[attr]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
