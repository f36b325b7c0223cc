"""How much memory a piece of work on a network needs, and whether this machine has it.

Everything that builds a network (the engines, the Lava networks, the fixed-point
quantisation, the mapper, the explicit parameter lists of a description) asks
:func:`require_memory` before it allocates, so a description whose weights, tables,
traces or mapping tables would not fit is refused up front with one line naming the
layer, the bytes needed and the bytes available, instead of being killed by the OOM
killer after minutes.

:func:`estimate_memory` is the one estimate they all use. Per layer ``l`` with ``n``
neurons and ``m`` inputs it counts

- ``weights``: ``copies * 8 * (n m + n)`` bytes (``2 n m`` with feedback alignment), where
  ``copies`` is the number of float64-sized copies of the parameters the work holds at
  its peak (:data:`WORK`: the drawn matrix, the working copy, learning temporaries, the
  copy handed back);
- ``neurons``: :data:`NEURON_BYTES` per neuron (constants) and :data:`STATE_BYTES` per
  neuron and batch element (state);
- ``traces``: ``trace_copies * 8 * T * batch * width`` for every recorded key of the layer;
- ``blocks``: ``block_bytes`` per block of a mapping (:data:`WORK`: its entries in the
  partition, the placement and the report, or in the bundle manifest);

and, shared by the network, the input stream (``2 * 8 * T * batch * in``) and the
fixed-point activation tables (:data:`TABLE_BYTES`). The factors are measured peaks
(``resource.getrusage``) rounded up, so the estimate errs on the large side by up to
about 2x; it exists to refuse the hopeless, not to budget the last megabyte.

Example
-------
>>> from lava_gle.description import network_from_dict
>>> net = network_from_dict({"gle_network": 1, "dt": 0.1, "input": {"size": 10},
...     "layers": [{"name": "big", "size": 1_000_000_000, "tau_m": 1, "tau_r": 1}]})
>>> est = estimate_memory(net, "numpy")
>>> est.layers["big"]["weights"] == 4 * 8 * (10 * 10**9 + 10**9)
True
"""
from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from lava_gle.errors import MemoryLimitError
from lava_gle.network import Network
from lava_gle.traces import Record, resolve_record

#: Bytes per neuron of the constants a built network holds (tau arrays, Euler factors).
NEURON_BYTES = 64
#: Bytes per neuron and batch element of the state (u, v, r, e, ... and step temporaries).
STATE_BYTES = 64
#: Estimates below this many bytes are not checked (reading the limits takes ~0.2 ms, and
#: training loops run an engine thousands of times).
UNCHECKED_BYTES = 32 * 2 ** 20
#: Bytes of the fixed-point activation tables and their error check (one layer at a time:
#: the check evaluates phi on a grid of up to ~4 million points).
TABLE_BYTES = 256 * 2 ** 20


@dataclass(frozen=True)
class Work:
    """What a piece of work allocates, in the units of :func:`estimate_memory`.

    Attributes
    ----------
    name : str
        How messages call it (``"the numpy engine"``).
    weight_copies : int
        float64-sized copies of every weight matrix (and bias vector) alive at its peak.
    trace_copies : int
        float64-sized copies of every recorded value (buffer, copy handed back, ...).
    fixed_point : bool
        It builds the fixed-point activation tables.
    block_bytes : int
        Bytes per block of a mapping it lists.
    """

    name: str
    weight_copies: int
    trace_copies: int = 2
    fixed_point: bool = False
    block_bytes: int = 0


#: Every kind of work by name: the backends (measured peaks per synapse: numpy 24 B,
#: numpy-fixed 72 B, quantisation 25 B; the Lava backends add the Processes' copies and
#: the shared arrays), the fixed-point quantisation, the mapper (measured per block: 1.7 KiB
#: with the text report, 3.9 KiB with the --json one; a bundle's manifest adds 4.5 KiB) and
#: the parameter lists.
WORK: dict[str, Work] = {
    "numpy": Work("the numpy engine", 4),
    "numpy-fixed": Work("the numpy-fixed engine", 10, fixed_point=True),
    "lava-float": Work("the lava-float network", 10, trace_copies=3),
    "lava-float-fused": Work("the lava-float-fused network", 10, trace_copies=3),
    "lava-fixed-exact": Work("the lava-fixed-exact network", 12, trace_copies=3,
                             fixed_point=True),
    "lava-fixed-fused": Work("the lava-fixed-fused network", 12, trace_copies=3,
                             fixed_point=True),
    # chip timing: one more weight copy, the backward arrays
    "lava-fixed": Work("the lava-fixed network", 13, trace_copies=3, fixed_point=True),
    "numpy-fixed-chip": Work("the numpy-fixed-chip engine", 11, fixed_point=True),
    "lava-fixed-fused-chip": Work("the lava-fixed-fused-chip network", 13, trace_copies=3,
                                  fixed_point=True),
    "quantize": Work("fixed-point quantisation", 4, fixed_point=True),
    "map": Work("the mapping", 0, block_bytes=4 * 2 ** 10),
    "bundle": Work("the bundle", 0, block_bytes=6 * 2 ** 10),
    # Python lists of floats (8 B pointer + 24 B object) next to the drawn matrix and
    # the matrix parsed back from them
    "parameter lists": Work("the explicit parameter lists", 6),
}


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a piece of work needs, per layer and component, and shared.

    Attributes
    ----------
    work : Work
    layers : dict of layer name -> dict of component -> bytes
        Components: ``weights``, ``neurons``, ``traces``, ``blocks`` (only those > 0).
    shared : dict of part -> bytes
        ``input stream``, ``activation tables`` (only those > 0).
    detail : dict of layer name -> dict of component -> str
        What each component counts (``"[1000, 10] x 3 copies"``), for messages.
    """

    work: Work
    layers: dict[str, dict[str, int]]
    shared: dict[str, int]
    detail: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Bytes in all."""
        return sum(sum(c.values()) for c in self.layers.values()) + sum(self.shared.values())

    def layer_total(self, name: str) -> int:
        return sum(self.layers[name].values())

    def largest_layer(self) -> str:
        """The name of the layer that needs the most."""
        return max(self.layers, key=self.layer_total)


def estimate_memory(net: Network, work: str | Work, *, steps: int = 0, batch: int = 1,
                    record: Record = False, built: bool = False, extra_weight_copies: int = 0,
                    blocks: Sequence[int] | None = None) -> MemoryEstimate:
    """The bytes ``work`` on ``net`` needs (see the module docstring for the model).

    Parameters
    ----------
    net : Network
    work : str or Work
        A name of :data:`WORK` or a :class:`Work`.
    steps, batch : int
        A run of ``steps`` time steps on ``batch`` streams (0 steps: no run).
    record : bool or iterable of str
        The per-step keys the run records (as :func:`lava_gle.traces.resolve_record`).
    built : bool
        The parameters, constants and tables exist already (only the run is counted).
    extra_weight_copies : int
        More float64 copies of the weights the caller keeps (e.g. snapshots along a run).
    blocks : sequence of int, optional
        Blocks of every layer in a mapping.
    """
    w = WORK[work] if isinstance(work, str) else work
    copies = (0 if built else w.weight_copies) + extra_weight_copies
    keys = resolve_record(record, net.layer_names) if steps > 0 else set()
    feedback = 2 if net.learning.backward == "feedback_alignment" else 1
    sizes = net.sizes
    top = len(net.layers) - 1
    layers: dict[str, dict[str, int]] = {}
    detail: dict[str, dict[str, str]] = {}
    for i, layer in enumerate(net.layers):
        n, m = layer.size, sizes[i]
        parts = {"weights": copies * 8 * (feedback * n * m + n), "neurons": 0, "traces": 0,
                 "blocks": 0}
        what = {"weights": f"weights [{n:,}, {m:,}] x {copies} float64 copies"}
        if w.weight_copies and not built:
            parts["neurons"] += NEURON_BYTES * n
        if (w.weight_copies and not built) or steps > 0:
            parts["neurons"] += STATE_BYTES * n * max(batch, 1)
        what["neurons"] = f"constants and state of {n:,} neurons x batch {batch}"
        recorded = sum(1 for k in keys if "." in k and k.split(".", 1)[1] == layer.name)
        if i == top and "output" in keys:
            recorded += 1
        parts["traces"] = w.trace_copies * 8 * steps * batch * n * recorded
        what["traces"] = (f"traces of {recorded} variable(s) x {steps:,} steps x batch "
                          f"{batch} x {n:,} neurons")
        if blocks is not None:
            parts["blocks"] = w.block_bytes * blocks[i]
            what["blocks"] = f"the mapping entries of {blocks[i]:,} blocks"
        layers[layer.name] = {k: v for k, v in parts.items() if v > 0}
        detail[layer.name] = what
    shared = {"input stream": 2 * 8 * steps * batch * net.input.size,
              "activation tables": TABLE_BYTES if w.fixed_point and not built else 0}
    return MemoryEstimate(w, layers, {k: v for k, v in shared.items() if v > 0}, detail)


#: What to change when a component does not fit, per component.
HINTS = {
    "weights": "make the layer or the one below it smaller",
    "neurons": "make the layer smaller or use a smaller batch",
    "traces": "run fewer steps or a smaller batch, or record fewer variables",
    "blocks": "give the system's size (--chips) to check the network against it, or map a "
              "smaller network",
    "input stream": "use a shorter input stream or a smaller batch",
    "activation tables": "free memory for the fixed-point tables",
}


def require_memory(net: Network, work: str | Work, **kwargs) -> MemoryEstimate:
    """:func:`estimate_memory` of ``work`` (same keyword arguments), refused when it exceeds
    :func:`available_memory` (estimates below :data:`UNCHECKED_BYTES` are not checked).

    Raises
    ------
    MemoryLimitError
        One line: the work, the bytes it needs and the bytes available (and where that
        number comes from), the layer that needs the most, its largest component and a fix.
    """
    est = estimate_memory(net, work, **kwargs)
    if est.total < UNCHECKED_BYTES:
        return est
    avail = available_memory()
    if avail is None or est.total <= avail[0]:
        return est
    room, source = avail
    name = est.largest_layer()
    comps = est.layers[name]
    if comps and est.layer_total(name) >= max(est.shared.values(), default=0):
        part = max(comps, key=comps.__getitem__)
        where = (f"layer {name!r} needs {format_bytes(est.layer_total(name))}, "
                 f"{format_bytes(comps[part])} of it for {est.detail[name][part]}")
        layer: str | None = name
    else:
        part = max(est.shared, key=est.shared.__getitem__)
        where = f"the {part} alone needs {format_bytes(est.shared[part])}"
        layer = None
    raise MemoryLimitError(
        f"{est.work.name} of network {net.name!r} would need about "
        f"{format_bytes(est.total)} of memory but {format_bytes(room)} are available "
        f"({source}): {where}; {HINTS[part]}",
        layer=layer, needed=est.total, available=room)


def format_bytes(n: int) -> str:
    """``n`` bytes as ``"1.5 GiB"`` (binary units)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # not reached


def available_memory() -> tuple[int, str] | None:
    """Bytes this process can still allocate, and where that number comes from.

    The smallest of: ``MemAvailable`` in ``/proc/meminfo`` (fallback: the free physical
    pages of ``sysconf``), the room left under the process's cgroup ``memory.max``, and the
    address space left under ``RLIMIT_AS``. ``None`` when none of them can be read.
    """
    found: list[tuple[int, str]] = []
    meminfo = _read_kib_fields(Path("/proc/meminfo"))
    if "MemAvailable" in meminfo:
        found.append((meminfo["MemAvailable"], "MemAvailable in /proc/meminfo"))
    else:
        try:
            found.append((os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"),
                          "free physical memory from sysconf"))
        except (ValueError, OSError, AttributeError):
            pass
    cgroup = _cgroup_room()
    if cgroup is not None:
        found.append((cgroup, "the cgroup's memory.max"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _read_kib_fields(Path("/proc/self/status")).get("VmSize", 0)
        found.append((max(soft - used, 0), f"RLIMIT_AS of {format_bytes(soft)}"))
    return min(found) if found else None


def _read_kib_fields(path: Path) -> dict[str, int]:
    """``Name: <n> kB`` lines of a /proc file, in bytes (empty when unreadable)."""
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), None when unlimited."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            base = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            try:
                limit = (base / "memory.max").read_text().strip()
                current = int((base / "memory.current").read_text().strip())
            except (OSError, ValueError):
                return None
            if not limit.isdigit():
                return None
            return max(int(limit) - current, 0)
    return None
