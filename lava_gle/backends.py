"""One front door to every simulation backend, and the one table that names them.

``simulate(net, inputs, targets, backend=...)`` runs a network and returns traces in
the golden key layout (float units). :data:`BACKENDS` lists every backend:

- ``numpy``: the float NumPy engine (:class:`lava_gle.numerics.engine.Engine`), batch axis.
- ``numpy-fixed``: the same engine over Loihi-2-style integer kernels
  (:class:`lava_gle.numerics.engine.FixedEngine`), batch axis; traces dequantised to float units
  plus ``sat.*`` saturation counts.
- ``lava-float`` / ``lava-fixed-exact``: Lava CPU simulation, one Lava Process per
  neuron population and per projection (:class:`lava_gle.runtime.LavaNetwork`), computing
  with the engine's own kernels: the numbers of ``numpy`` / ``numpy-fixed`` at batch 1.
- ``lava-fixed``: the structural Lava model with chip timing (``fixed_point.timing:
  chip``, ``docs/fixed-point.md``): one Process per layer holding its neurons and forward
  array, one per backward array, no signal back to its sender inside a step; the
  integers of ``numpy-fixed-chip`` at batch 1.
- ``lava-float-fused`` / ``lava-fixed-fused``: ``numpy`` / ``numpy-fixed`` as one Lava
  Process.
- ``numpy-fixed-chip`` / ``lava-fixed-fused-chip``: ``numpy-fixed`` / ``lava-fixed-fused``
  with chip timing: a separate backward array per layer with its own learning epoch and
  rounding numbers.

Timing: ``numpy-fixed`` and ``lava-fixed-fused`` run the description's
``fixed_point.timing`` (default ``exact``); the names ending in ``-chip``, and
``lava-fixed``, run chip timing whatever the description says, ``lava-fixed-exact``
exact timing (``lava-gle compare --backends numpy-fixed,numpy-fixed-chip`` shows what
chip timing costs). :func:`twin` names the stepping engine that computes a backend's
numbers.

:func:`make_engine` gives the stepping engine of a backend (the
:class:`~lava_gle.numerics.engine.Engine` API: ``run``/``step``/``weights``/``state_dict``) for
training loops such as ``lava-gle experiment``; the Lava backends have none (a Lava run
starts from the zero state) and raise :class:`BackendUnavailableError`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from lava_gle.errors import BackendUnavailableError, LavaGleError
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.numerics.streams import prepare_streams
from lava_gle.traces import Record

if TYPE_CHECKING:
    from lava_gle.quantize import QuantizedNetwork


@dataclass(frozen=True)
class Backend:
    """A backend: its ``arithmetic`` (``float`` or ``fixed``), whether it runs as Lava
    Processes (``lava``), whether as one fused Process (``fused``), and the
    ``fixed_point.timing`` it imposes on the description (None: the description's own)."""

    name: str
    arithmetic: str
    lava: bool
    fused: bool = False
    timing: str | None = None

    def network(self, net: Network) -> Network:
        """``net`` with the backend's timing in ``fixed_point`` (``net`` itself if none)."""
        if self.timing is None or net.fixed_point.get("timing", "exact") == self.timing:
            return net
        return replace(net, fixed_point={**net.fixed_point, "timing": self.timing})

    def timed(self, qnet: QuantizedNetwork | None) -> QuantizedNetwork | None:
        """``qnet`` with the backend's timing (``qnet`` itself if none; None stays None)."""
        if qnet is None or self.timing is None:
            return qnet
        return replace(qnet, chip_timing=self.timing == "chip")

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
    Backend("lava-fixed", "fixed", lava=True, timing="chip"),
    Backend("lava-fixed-exact", "fixed", lava=True, timing="exact"),
    Backend("lava-fixed-fused", "fixed", lava=True, fused=True),
    Backend("numpy-fixed-chip", "fixed", lava=False, timing="chip"),
    Backend("lava-fixed-fused-chip", "fixed", lava=True, fused=True, timing="chip"),
)}

#: The backends with a stepping engine (training loops, checkpoints).
STEPPING = tuple(name for name, b in BACKENDS.items() if b.stepping)
#: The backends that run integers (a :class:`~lava_gle.quantize.QuantizedNetwork`).
FIXED = tuple(name for name, b in BACKENDS.items() if b.arithmetic == "fixed")


def get_backend(name: str) -> Backend:
    """The :class:`Backend` called ``name``; an unknown name lists the valid ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise LavaGleError(f"unknown backend {name!r}; choose one of {list(BACKENDS)}") from None


def check_runnable(net: Network, name: str) -> None:
    """Raise now what backend ``name`` would raise as it starts on ``net``: an unknown
    name, a description its arithmetic has no form for (e.g. loss ``ce`` in fixed point)
    or formats the quantiser refuses. For commands that run several backends in turn
    (``compare``), so that none runs for minutes before another is refused."""
    b = get_backend(name)
    if b.arithmetic == "fixed":
        import warnings

        from lava_gle.quantize import QuantizationWarning, quantize_network
        with warnings.catch_warnings():  # the run itself warns
            warnings.simplefilter("ignore", QuantizationWarning)
            quantize_network(b.network(net))


def twin(name: str) -> str:
    """The stepping backend (:data:`STEPPING`) that computes the numbers of backend ``name``
    (at batch 1 for a Lava one), for a description without ``fixed_point.timing`` or with
    ``exact``: ``numpy`` for the float ones, ``numpy-fixed-chip`` for ``lava-fixed`` and
    the ``-chip`` ones, ``numpy-fixed`` for the other fixed-point ones."""
    b = get_backend(name)
    if b.arithmetic == "float":
        return "numpy"
    return "numpy-fixed-chip" if b.timing == "chip" else "numpy-fixed"


def lava_network(net: Network, name: str, chunk: int | None = None, allow_nan: bool = False,
                 qnet: QuantizedNetwork | None = None):
    """An (unstarted) :class:`~lava_gle.runtime.LavaNetwork` for a ``lava-*`` backend
    (``qnet``: the integers of a fixed-point one, see :func:`simulate`)."""
    from lava_gle.runtime import LavaNetwork
    b = get_backend(name)
    return LavaNetwork(b.network(net), backend=b.arithmetic, fused=b.fused, chunk=chunk,
                       allow_nan=allow_nan, qnet=b.timed(qnet))


def make_engine(net: Network, name: str = "numpy", optimizer=None, dtype=np.float64,
                allow_nan: bool = False, qnet: QuantizedNetwork | None = None):
    """A stepping engine for backend ``name`` with the :class:`~lava_gle.numerics.engine.Engine` API.

    ``optimizer`` is applied to the local signals (default: GLE's own rule; float only);
    ``dtype`` is the float type and ``allow_nan`` the divergence policy of float backends
    (see :class:`~lava_gle.numerics.engine.Engine`; integer runs cannot diverge); ``qnet`` the
    integers of a fixed-point backend (see :func:`simulate`).
    """
    from lava_gle.numerics.engine import Engine, FixedEngine
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
    engine = FixedEngine(b.network(net), qnet=b.timed(qnet))
    engine.backend = b.name
    return engine


def simulate(net: Network, inputs, targets=None, backend: str = "numpy",
             record: Record = True, progress: bool = False, allow_nan: bool = False,
             qnet: QuantizedNetwork | None = None) -> dict:
    """Run ``net`` on ``inputs`` [T, (batch,) in] with the named backend; return traces.

    ``qnet``: for a fixed-point backend, the integers to run instead of
    ``quantize_network(net)`` (a deployment bundle's, :meth:`Bundle.quantized`); a float
    backend cannot run them and refuses.

    The streams are checked against the description and the run's memory against what is
    available before anything is drawn or allocated (:class:`~lava_gle.errors.ShapeError`,
    :class:`~lava_gle.errors.MemoryLimitError`). A float run that produces NaN or inf
    raises :class:`~lava_gle.errors.DivergenceError` naming the first layer, variable and
    step, unless ``allow_nan`` (then it warns once and returns the traces as they are).
    """
    b = get_backend(backend)
    if qnet is not None and b.arithmetic != "fixed":
        raise LavaGleError(f"backend {backend!r} is float and cannot run quantised integers; "
                           f"choose one of {list(FIXED)}")
    x, y = prepare_streams(net, inputs, targets)
    require_memory(net, b.name, steps=x.shape[0], batch=x.shape[1], record=record)
    if b.lava:
        with lava_network(net, b.name, allow_nan=allow_nan, qnet=qnet) as sim:
            return sim.run(x, y, record=record, progress=progress)
    return make_engine(net, b.name, allow_nan=allow_nan, qnet=qnet).run(x, y, record=record,
                                                                        progress=progress)
