"""One front door to every simulation backend, and the one table that names them.

``simulate(net, inputs, targets, backend=...)`` runs a network and returns traces in
the golden key layout (float units). :data:`BACKENDS` lists every backend:

- ``numpy``: the float NumPy engine (:class:`lava_gle.engine.Engine`), batch axis.
- ``numpy-fixed``: the same engine over Loihi-2-style integer kernels
  (:class:`lava_gle.engine.FixedEngine`), batch axis; traces dequantised to float units
  plus ``sat.*`` saturation counts.
- ``lava-float`` / ``lava-fixed``: Lava CPU simulation, one Lava Process per neuron
  population and per projection (:class:`lava_gle.runtime.LavaNetwork`), computing with
  the engine's own kernels: the numbers of ``numpy`` / ``numpy-fixed`` at batch 1.
- ``lava-float-fused`` / ``lava-fixed-fused``: the same as one Lava Process.

:func:`make_engine` gives the stepping engine of a backend (the
:class:`~lava_gle.engine.Engine` API: ``run``/``step``/``weights``/``state_dict``) for
training loops such as ``lava-gle experiment``; the Lava backends have none (a Lava run
starts from the zero state) and raise :class:`BackendUnavailableError`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lava_gle.errors import BackendUnavailableError, LavaGleError
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.streams import prepare_streams
from lava_gle.traces import Record


@dataclass(frozen=True)
class Backend:
    """A backend: its ``arithmetic`` (``float`` or ``fixed``), whether it runs as Lava
    Processes (``lava``), and whether as one fused Process (``fused``)."""

    name: str
    arithmetic: str
    lava: bool
    fused: bool = False

    @property
    def stepping(self) -> bool:
        """Whether it has a stepping, resumable engine (:func:`make_engine`)."""
        return not self.lava


#: Every backend by name: the one table of the backend vocabulary.
BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("numpy", "float", lava=False),
    Backend("numpy-fixed", "fixed", lava=False),
    Backend("lava-float", "float", lava=True),
    Backend("lava-float-fused", "float", lava=True, fused=True),
    Backend("lava-fixed", "fixed", lava=True),
    Backend("lava-fixed-fused", "fixed", lava=True, fused=True),
)}

#: The backends with a stepping engine (training loops, checkpoints).
STEPPING = tuple(name for name, b in BACKENDS.items() if b.stepping)


def get_backend(name: str) -> Backend:
    """The :class:`Backend` called ``name``; an unknown name lists the valid ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise LavaGleError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}") from None


def lava_network(net: Network, name: str, chunk: int | None = None, allow_nan: bool = False):
    """An (unstarted) :class:`~lava_gle.runtime.LavaNetwork` for a ``lava-*`` backend."""
    from lava_gle.runtime import LavaNetwork
    b = get_backend(name)
    return LavaNetwork(net, backend=b.arithmetic, fused=b.fused, chunk=chunk,
                       allow_nan=allow_nan)


def make_engine(net: Network, name: str = "numpy", optimizer=None, dtype=np.float64,
                allow_nan: bool = False):
    """A stepping engine for backend ``name`` with the :class:`~lava_gle.engine.Engine` API.

    ``optimizer`` is applied to the local signals (default: GLE's own rule; float only);
    ``dtype`` is the float type and ``allow_nan`` the divergence policy of float backends
    (see :class:`~lava_gle.engine.Engine`; integer runs cannot diverge).
    """
    from lava_gle.engine import Engine, FixedEngine
    b = get_backend(name)
    if not b.stepping:
        raise BackendUnavailableError(
            f"backend {name!r} has no stepping engine; choose one of {list(STEPPING)}")
    if b.arithmetic == "float":
        return Engine(net, dtype=dtype, optimizer=optimizer, allow_nan=allow_nan)
    if optimizer is not None:
        raise LavaGleError(f"backend {name!r} learns with the learning engine's own rule "
                           f"(dW = eta e r^T, learning.eta); it cannot run the optimizer "
                           f"{type(optimizer).__name__}")
    return FixedEngine(net)


def simulate(net: Network, inputs, targets=None, backend: str = "numpy",
             record: Record = True, progress: bool = False, allow_nan: bool = False) -> dict:
    """Run ``net`` on ``inputs`` [T, (batch,) in] with the named backend; return traces.

    The streams are checked against the description and the run's memory against what is
    available before anything is drawn or allocated (:class:`~lava_gle.errors.ShapeError`,
    :class:`~lava_gle.errors.MemoryLimitError`). A float run that produces NaN or inf
    raises :class:`~lava_gle.errors.DivergenceError` naming the first layer, variable and
    step, unless ``allow_nan`` (then it warns once and returns the traces as they are).
    """
    b = get_backend(backend)
    x, y = prepare_streams(net, inputs, targets)
    require_memory(net, b.name, steps=x.shape[0], batch=x.shape[1], record=record)
    if b.lava:
        with lava_network(net, b.name, allow_nan=allow_nan) as sim:
            return sim.run(x, y, record=record, progress=progress)
    return make_engine(net, b.name, allow_nan=allow_nan).run(x, y, record=record,
                                                             progress=progress)
