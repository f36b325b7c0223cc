"""Fingerprints of every number lava-gle computes, to show a refactor changed none.

Hashes (SHA-256 of the exact bytes) of the traces of every golden case on every backend,
and of the results of the ``--quick`` experiments (their metrics without wall times and
the commit that computed them).
Record before a change, check after it, on the same machine:

    .venv/bin/python benchmarks/trace_hashes.py --write runs/hashes-before.json
    .venv/bin/python benchmarks/trace_hashes.py --check runs/hashes-before.json

Integer backends (``numpy-fixed``, ``lava-fixed*``) give the same hashes on every
machine; float backends are exact on one machine but may differ in the last bits between
BLAS kernels (Intel against AMD) and between BLAS thread counts, so compare float hashes
on the machine that wrote them (the ``chip-rule`` case too: its formats are sized from a
float twin). BLAS runs on one thread unless ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` say otherwise, so that a ``--write`` and a
``--check`` with the default environment use the same kernels.
Takes about 2 minutes on 2 cores (the Lava backends dominate).
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # before NumPy; the experiments' subprocesses inherit it

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "data" / "golden"
#: The chip's rule with normalisers, gains, chip timing and weight averaging (the MNIST-1D
#: recipe of docs/experiments.md at batch 100; its float twin trains first).
CHIP_RULE = ["--optimizer", "sgd", "--loss", "mse", "--sgd-eta", "0.002", "--halve-every", "4",
             "--balanced-batches", "--normalizers", "0.9990234375", "--gain-decay",
             "0.99993896484375", "--eta-scale", "h0=0.1", "--eta-scale", "h1=0.1",
             "--gain-max", "10", "--average-window", "20"]
#: (experiment, backend, label of the extra flags or "", the flags)
QUICK_EXPERIMENTS = [("lagline", "numpy", "", []), ("lagline", "numpy-fixed", "", []),
                     ("yinyang", "numpy", "", []), ("mnist1d", "numpy", "", []),
                     ("mnist1d", "numpy-fixed-chip", "chip-rule", CHIP_RULE)]


def digest(arrays: dict[str, np.ndarray]) -> str:
    """One hash over sorted keys, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def golden_hashes() -> dict[str, str]:
    from lava_gle import load_network
    from lava_gle.backends import BACKENDS, simulate
    out = {}
    for case in sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.npz").is_file()):
        net = load_network(GOLDEN / case / "network.json")
        x = np.load(GOLDEN / case / "inputs.npy")
        y = np.load(GOLDEN / case / "targets.npy")
        for backend in sorted(BACKENDS):
            b = 1 if backend.startswith("lava") and net.learning.enabled else x.shape[1]
            with warnings.catch_warnings():  # Lava learns at batch 1
                warnings.simplefilter("ignore")
                traces = simulate(net, x[:, :b], y[:, :b], backend=backend, record=True)
            out[f"golden/{case}/{backend}"] = digest(traces)
            print(f"  golden/{case}/{backend}: {out[f'golden/{case}/{backend}']}", flush=True)
    return out


def _without_times(value):
    """``value`` without wall times, speeds and the code's provenance (``lava_gle``: the
    commit that computed it, which every commit changes)."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items()
                if "time" not in k and "second" not in k and k not in ("steps_per_s", "lava_gle")}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def experiment_hashes() -> dict[str, str]:
    out = {}
    for name, backend, label, flags in QUICK_EXPERIMENTS:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "lava_gle.cli", "experiment", name, "--quick",
                            "--backend", backend, *flags, "--quiet", "--out", tmp], check=True)
            metrics = json.loads((Path(tmp) / "metrics.json").read_text())
        text = json.dumps(_without_times(metrics), sort_keys=True).encode()
        key = "/".join(["experiment", name, backend] + ([label] if label else []))
        out[key] = hashlib.sha256(text).hexdigest()[:20]
        print(f"  {key}: {out[key]}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="JSON", help="record the hashes in this file")
    group.add_argument("--check", metavar="JSON", help="compare with hashes recorded before")
    args = parser.parse_args()
    hashes = {**golden_hashes(), **experiment_hashes()}
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(hashes)} hashes to {args.write}")
        return 0
    before = json.loads(Path(args.check).read_text())
    changed = sorted(k for k in before.keys() | hashes.keys() if before.get(k) != hashes.get(k))
    for key in changed:
        print(f"CHANGED {key}: {before.get(key)} -> {hashes.get(key)}")
    print(f"{len(hashes) - len(changed)} of {len(before.keys() | hashes.keys())} unchanged")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
