"""The deployment bundle: what the hardware path consumes.

A bundle is a directory with

- ``manifest.json``: format and version, the profile (every number with its source), the
  placement (every block: layer, neurons ``start:stop``, core, chip), the resource report
  (totals, per layer, per core), and, when the fixed-point formats are available, the
  quantised formats, exponents and neuron constants (:meth:`QuantizedNetwork.manifest`) and
  each projection's learning-rule microcode (:func:`lava_gle.microcode.learning_rules`);
- ``network.json``: the network description, so the bundle can be deployed on its own;
- ``arrays.npz``: the quantised integer arrays (:meth:`QuantizedNetwork.arrays`: weights,
  biases and a described normaliser state), when present.

:func:`fixed_point_payload` is the one place where the fixed-point work enters the bundle;
:meth:`Bundle.quantized` the one place where it comes back out: the
:class:`~lava_gle.quantize.QuantizedNetwork` that ``deploy`` and ``simulate BUNDLE_DIR`` run,
with the bundle's own integer arrays.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lava_gle.numerics import fixed as X
from lava_gle.description import load_network, save_network
from lava_gle.errors import LavaGleError
from lava_gle.mappings.estimate import estimate, no_estimate_note
from lava_gle.mappings.mapper import Mapping
from lava_gle.mappings.report import MappingReport, build_report
from lava_gle.mappings.resources import per_layer
from lava_gle.memory import require_memory
from lava_gle.microcode import learning_rules
from lava_gle.network import Network
from lava_gle.provenance import code_version, describe
from lava_gle.quantize import QuantizedLayer, QuantizedNetwork, quantize_network
from lava_gle.results import atomic_write, jsonable, write_json

BUNDLE_FORMAT = "lava-gle-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
NETWORK = "network.json"
ARRAYS = "arrays.npz"
#: Networks with more synapses than this and no explicit weights are not quantised into the
#: bundle (their weights would have to be drawn); the placement is still written.
MAX_DRAWN_SYNAPSES = 10_000_000


class BundleError(LavaGleError, ValueError):
    """A bundle directory is missing, incomplete or of another format."""


@dataclass(frozen=True)
class Bundle:
    """A bundle read back from disk."""

    path: Path
    manifest: dict
    net: Network

    @property
    def has_fixed_point(self) -> bool:
        return self.manifest.get("fixed_point") is not None

    def arrays(self) -> dict[str, np.ndarray]:
        """The quantised arrays (empty when the bundle has none)."""
        if not self.manifest.get("arrays"):
            return {}
        try:
            with np.load(self.path / ARRAYS, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise BundleError(f"{self.path / ARRAYS}: cannot read the arrays ({exc}); map "
                              "the network again") from None

    def quantized(self) -> QuantizedNetwork:
        """The integer network this bundle describes, with the bundle's own arrays.

        The formats and constants are derived from ``network.json`` (quantisation is
        deterministic) and must equal the manifest's ``fixed_point`` and ``learning_rules``
        sections; the integer weights and biases are then taken from
        ``arrays.npz``, checked for shape, type and range. So a run of the result is a run
        of exactly the integers in the bundle.

        Raises
        ------
        BundleError
            No fixed-point section; formats that differ from the manifest (names the first
            differing field); a missing, extra, misshapen, non-integer or out-of-range array.
        """
        where = self.path / MANIFEST
        if not self.has_fixed_point:
            notes = "; ".join(self.manifest.get("notes", [])) or "no fixed-point section"
            raise BundleError(f"{self.path}: the bundle has no quantised parameters ({notes})")
        qnet = quantize_network(self.net)
        for section, derived in (("fixed_point", qnet.manifest()),
                                 ("learning_rules", learning_rules(qnet))):
            diff = _first_difference(self.manifest.get(section), jsonable(derived), section)
            if diff is not None:
                raise BundleError(
                    f"{where}: {diff} differs from what this lava-gle derives from {NETWORK}: "
                    f"{NETWORK} was edited after mapping, or the bundle was mapped by another "
                    f"lava-gle ({describe(self.manifest.get('lava_gle'))}); map the network "
                    "again with this one ('lava-gle map NET --out DIR')")
        arrays = self.arrays()
        expected = qnet.arrays()
        extra, missing = sorted(set(arrays) - set(expected)), sorted(set(expected) - set(arrays))
        if missing or extra:
            raise BundleError(f"{self.path / ARRAYS}: " + "; ".join(
                f"{what} arrays {keys}" for what, keys in (("missing", missing),
                                                           ("unexpected", extra)) if keys)
                + "; map the network again")
        return replace(qnet, layers=[_with_arrays(self.path / ARRAYS, ql, arrays)
                                     for ql in qnet.layers])


def _first_difference(stored, derived, path: str) -> str | None:
    """The first field (``a.b[1].c``) where two JSON values differ, with both values."""
    if isinstance(stored, dict) and isinstance(derived, dict):
        for key in sorted(set(stored) | set(derived), key=str):
            found = _first_difference(stored.get(key), derived.get(key), f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(stored, list) and isinstance(derived, list) and len(stored) == len(derived):
        for i, (a, b) in enumerate(zip(stored, derived)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if stored == derived:
        return None
    if isinstance(stored, list) and isinstance(derived, list):
        return f"{path} ({len(stored)} entries in the manifest, {len(derived)} derived)"
    shown = [text if len(text) <= 40 else text[:37] + "..."
             for text in (json.dumps(stored), json.dumps(derived))]
    return f"{path} ({shown[0]} in the manifest, {shown[1]} derived)"


def _array_ranges(ql: QuantizedLayer) -> dict[str, tuple[int, int]]:
    """The integer range each array of layer ``ql`` must lie in (a mean square: that of a
    24-bit value)."""
    ms = (0, (1 << (2 * X.STATE_BITS - 2)) - 1)
    return {"W": (X.W_MIN, X.W_MAX), "b": (X.W_MIN, X.W_MAX) if ql.bias else (0, 0),
            "gain_ms": ms, "error_ms": ms, "norm_steps": (1, np.iinfo(np.int64).max)}


def _with_arrays(path: Path, ql: QuantizedLayer,
                 arrays: dict[str, np.ndarray]) -> QuantizedLayer:
    """``ql`` with its weights, biases and described normaliser state from ``arrays``
    (checked)."""
    derived = {"W": ql.w, "b": ql.b, **(ql.norm_state or {})}
    ranges = _array_ranges(ql)
    got: dict[str, np.ndarray] = {}
    for kind, like in derived.items():
        if like is None:
            continue
        key, a = f"{kind}.{ql.name}", arrays[f"{kind}.{ql.name}"]
        if a.shape != like.shape:
            raise BundleError(f"{path}: {key} has shape {list(a.shape)}, layer {ql.name!r} "
                              f"needs {list(like.shape)}; map the network again")
        if not np.issubdtype(a.dtype, np.integer):
            raise BundleError(f"{path}: {key} holds {a.dtype} values; the bundle's arrays are "
                              "integers (map the network again)")
        lo, hi = ranges[kind]
        if a.size and (a.min() < lo or a.max() > hi):
            bad = a.min() if a.min() < lo else a.max()
            raise BundleError(f"{path}: {key} holds {int(bad)}, outside [{lo}, {hi}]; keep "
                              f"the integers in range or map the network again")
        got[kind] = a.astype(np.int64)
    state = {k: got[k] for k in ql.norm_state} if ql.norm_state is not None else None
    return replace(ql, w=got["W"], b=got["b"], norm_state=state)


def fixed_point_payload(net: Network) -> tuple[dict | None, dict | None,
                                               dict[str, np.ndarray], list[str]]:
    """Quantised formats (manifest), learning-rule microcode and arrays of ``net``.

    Uses :func:`lava_gle.quantize.quantize_network` and
    :func:`lava_gle.microcode.learning_rules`; returns ``(formats or None, rules or None,
    arrays, notes)`` where ``notes`` say what was left out and why (network too large to
    draw its weights, no fixed-point form).
    """
    notes: list[str] = []
    drawn = sum(a * b for a, b in zip(net.sizes[:-1], net.sizes[1:]))
    if any(layer.weights is None for layer in net.layers) and drawn > MAX_DRAWN_SYNAPSES:
        notes.append(f"fixed point: not quantised, the weights would be drawn for {drawn:,} "
                     f"synapses (limit {MAX_DRAWN_SYNAPSES:,}); the bundle holds the placement")
        return None, None, {}, notes
    try:
        qnet = quantize_network(net)
    except LavaGleError as exc:
        notes.append(f"fixed point: no fixed-point form ({exc})")
        return None, None, {}, notes
    return qnet.manifest(), learning_rules(qnet), qnet.arrays(), notes


def write_bundle(mapping: Mapping, out_dir: str | os.PathLike,
                 report: MappingReport | None = None,
                 cost: dict | None = None) -> tuple[Path, list[str]]:
    """Write the bundle of ``mapping`` into ``out_dir`` (created); return it and the notes.

    ``cost``: the time and energy estimate (:func:`lava_gle.mappings.estimate.estimate`;
    one step per sample when not given; none, with a note, for a profile without per-event
    figures). Raises :class:`~lava_gle.errors.MemoryLimitError`
    before writing anything when the manifest's per-block entries would not fit in memory.
    """
    require_memory(mapping.net, "bundle",  # a block per core
                   blocks=per_layer(mapping.costs, mapping.layer_cores))
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BundleError(f"--out: cannot create the bundle directory {out} ({exc})") from None
    report = report or build_report(mapping)
    cost = cost or estimate(mapping)
    formats, rules, arrays, notes = fixed_point_payload(mapping.net)
    if cost is None:
        notes = [*notes, no_estimate_note(mapping.profile)]
    chip_of = mapping.placement.chip_of_core
    names = [c.name for c in mapping.costs]
    manifest = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "lava_gle": code_version(),
        "network": {"file": NETWORK, "name": mapping.net.name, "sizes": mapping.net.sizes},
        "profile": report.profile, "strategy": report.strategy,
        "placement": {"cores": mapping.cores, "chips": mapping.chips,
                      "cores_per_chip": mapping.profile.cores_per_chip,
                      "blocks": [{"layer": names[b.layer], "start": b.start, "stop": b.stop,
                                  "core": b.core, "chip": chip_of[b.core]}
                                 for b in mapping.blocks]},
        "resources": {"totals": report.totals, "layers": report.layers, "cores": list(report.cores)},
        "estimate": cost,
        "fixed_point": formats, "learning_rules": rules,
        "arrays": {"file": ARRAYS, "keys": sorted(arrays)} if arrays else None,
        "notes": notes,
    }
    write_json(out / MANIFEST, manifest, indent=1)
    save_network(mapping.net, out / NETWORK)
    if arrays:
        with atomic_write(out / ARRAYS) as fh:
            np.savez_compressed(fh, **arrays)
    elif (out / ARRAYS).exists():
        (out / ARRAYS).unlink()
    return out, notes


def is_bundle(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a directory holding a bundle manifest."""
    return (Path(path) / MANIFEST).is_file()


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Read a bundle directory written by :func:`write_bundle`."""
    path = Path(path)
    if not is_bundle(path):
        raise BundleError(f"{path}: not a bundle directory (no {MANIFEST}); write one with "
                          "'lava-gle map NET --out DIR'")
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path / MANIFEST}: cannot read the manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{path / MANIFEST}: not a lava-gle bundle manifest")
    if manifest.get("version") != BUNDLE_VERSION:
        raise BundleError(f"{path / MANIFEST}: bundle version {manifest.get('version')!r}; "
                          f"this lava-gle reads version {BUNDLE_VERSION}; map the network again")
    if manifest.get("arrays") and not (path / ARRAYS).is_file():
        raise BundleError(f"{path}: the manifest lists {ARRAYS} but the file is missing")
    return Bundle(path, manifest, load_network(path / NETWORK))
