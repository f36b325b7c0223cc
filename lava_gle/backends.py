"""One front door to every simulation backend.

``simulate(net, inputs, targets, backend=...)`` runs a network and returns traces in
the golden key layout (float units). Backends:

- ``numpy``: the float NumPy engine (:mod:`lava_gle.engine`), batch axis, float64.
- ``lava-float``: Lava CPU simulation with ``floating_pt`` models, one Lava Process per
  neuron population and per projection (:class:`lava_gle.mappings.LavaNetwork`).
- ``lava-float-fused``: the same network as one Lava Process (fused model, same traces).
- ``lava-fixed``: Lava CPU simulation with the ``fixed_pt`` models (:mod:`lava_gle.models.fixed`),
  one Lava Process per population and projection; integers identical to ``numpy-fixed``.
- ``lava-fixed-fused``: the same as one Lava Process (identical integers).
- ``numpy-fixed``: the fixed-point NumPy engine (:mod:`lava_gle.fixed_engine`), Loihi-2-style
  integers, batch axis; traces dequantised to float units plus ``sat.*`` saturation counts.

:func:`make_engine` gives the stepping engine of a backend (the
:class:`~lava_gle.engine.Engine` API: ``run``/``step``/``weights``/``tau_m``/``state``)
for training loops such as ``lava-gle experiment``; a backend that is named in
:data:`BACKEND_NAMES` but not built yet raises :class:`BackendUnavailableError`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from lava_gle.errors import BackendUnavailableError, LavaGleError
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.streams import prepare_streams
from lava_gle.traces import Record


def _numpy(net: Network, inputs, targets, record: Record, progress: bool,
           allow_nan: bool) -> dict:
    from lava_gle.engine import Engine
    return Engine(net, allow_nan=allow_nan).run(inputs, targets, record=record,
                                                progress=progress)


def _numpy_fixed(net: Network, inputs, targets, record: Record, progress: bool,
                 allow_nan: bool) -> dict:
    from lava_gle.fixed_engine import FixedEngine
    return FixedEngine(net).run(inputs, targets, record=record, progress=progress)


#: Lava backend name -> (arithmetic, fused) of :class:`lava_gle.mappings.LavaNetwork`.
LAVA_BACKENDS: dict[str, tuple[str, bool]] = {
    "lava-float": ("float", False),
    "lava-float-fused": ("float", True),
    "lava-fixed": ("fixed", False),
    "lava-fixed-fused": ("fixed", True),
}


def lava_network(net: Network, backend: str, chunk: int | None = None,
                 allow_nan: bool = False):
    """An (unstarted) :class:`~lava_gle.mappings.LavaNetwork` for a ``lava-*`` backend name."""
    from lava_gle.mappings import LavaNetwork
    arithmetic, fused = LAVA_BACKENDS[backend]
    return LavaNetwork(net, backend=arithmetic, fused=fused, chunk=chunk, allow_nan=allow_nan)


def _lava(backend: str) -> Callable[..., dict]:
    def runner(net: Network, inputs, targets, record: Record, progress: bool,
               allow_nan: bool) -> dict:
        with lava_network(net, backend, allow_nan=allow_nan) as sim:
            return sim.run(inputs, targets, record=record, progress=progress)
    return runner


#: backend name -> runner(net, inputs, targets, record, progress, allow_nan) -> traces
BACKENDS: dict[str, Callable[..., dict]] = {
    "numpy": _numpy,
    "numpy-fixed": _numpy_fixed,
    **{name: _lava(name) for name in LAVA_BACKENDS},
}


def _numpy_engine(net: Network, optimizer, dtype, allow_nan: bool):
    from lava_gle.engine import Engine
    return Engine(net, dtype=dtype, optimizer=optimizer, allow_nan=allow_nan)


def _numpy_fixed_engine(net: Network, optimizer, dtype, allow_nan: bool):
    from lava_gle.fixed_engine import FixedEngine
    if optimizer is not None:
        raise LavaGleError(f"backend 'numpy-fixed' learns with the learning engine's own rule "
                           f"(dW = eta e r^T, learning.eta); it cannot run the optimizer "
                           f"{type(optimizer).__name__}")
    return FixedEngine(net)


#: Every backend name the command line accepts (some may not be built yet).
BACKEND_NAMES = ("numpy", "numpy-fixed", "lava-float", "lava-fixed")

#: backend name -> factory(net, optimizer, dtype, allow_nan) of a stepping engine
ENGINES: dict[str, Callable[..., object]] = {
    "numpy": _numpy_engine,
    "numpy-fixed": _numpy_fixed_engine,
}


def make_engine(net: Network, backend: str = "numpy", optimizer=None, dtype=np.float64,
                allow_nan: bool = False):
    """A stepping engine for ``backend`` with the :class:`~lava_gle.engine.Engine` API.

    ``optimizer`` is applied to the local signals (default: GLE's own SGD rule);
    ``dtype`` is the float type and ``allow_nan`` the divergence policy of float backends
    (see :class:`~lava_gle.engine.Engine`; integer runs cannot diverge).
    """
    if backend not in BACKEND_NAMES:
        raise LavaGleError(f"unknown backend {backend!r}; choose one of {list(BACKEND_NAMES)}")
    if backend not in ENGINES:
        raise BackendUnavailableError(
            f"backend {backend!r} has no stepping engine in this build yet; "
            f"choose one of {sorted(ENGINES)}")
    return ENGINES[backend](net, optimizer, dtype, allow_nan)


def simulate(net: Network, inputs, targets=None, backend: str = "numpy",
             record: Record = True, progress: bool = False, allow_nan: bool = False) -> dict:
    """Run ``net`` on ``inputs`` [T, (batch,) in] with the named backend; return traces.

    The streams are checked against the description and the run's memory against what is
    available before anything is drawn or allocated (:class:`~lava_gle.errors.ShapeError`,
    :class:`~lava_gle.errors.MemoryLimitError`). A float run that produces NaN or inf
    raises :class:`~lava_gle.errors.DivergenceError` naming the first layer, variable and
    step, unless ``allow_nan`` (then it warns once and returns the traces as they are).
    """
    try:
        runner = BACKENDS[backend]
    except KeyError:
        raise LavaGleError(f"unknown backend {backend!r}; choose one of "
                           f"{sorted(BACKENDS)}") from None
    x, y = prepare_streams(net, inputs, targets)
    require_memory(net, backend, steps=x.shape[0], batch=x.shape[1], record=record)
    return runner(net, x, y, record, progress, allow_nan)
