"""One front door to every simulation backend.

``simulate(net, inputs, targets, backend=...)`` runs a network and returns traces in
the golden key layout (float units). Backends:

- ``numpy``: the float NumPy engine (:mod:`lava_gle.engine`), batch axis, float64.
"""
from __future__ import annotations

from typing import Callable

from lava_gle.errors import LavaGleError
from lava_gle.network import Network
from lava_gle.traces import Record


def _numpy(net: Network, inputs, targets, record: Record, progress: bool) -> dict:
    from lava_gle.engine import Engine
    return Engine(net).run(inputs, targets, record=record, progress=progress)


#: backend name -> runner(net, inputs, targets, record, progress) -> traces
BACKENDS: dict[str, Callable[..., dict]] = {
    "numpy": _numpy,
}


def simulate(net: Network, inputs, targets=None, backend: str = "numpy",
             record: Record = True, progress: bool = False) -> dict:
    """Run ``net`` on ``inputs`` [T, (batch,) in] with the named backend; return traces."""
    try:
        runner = BACKENDS[backend]
    except KeyError:
        raise LavaGleError(f"unknown backend {backend!r}; choose one of "
                           f"{sorted(BACKENDS)}") from None
    return runner(net, inputs, targets, record, progress)
