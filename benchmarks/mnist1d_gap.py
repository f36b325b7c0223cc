"""Where MNIST-1D's integers fall behind their float twin: probes on the first batches.

Takes a finished (or running) ``lava-gle experiment mnist1d --backend numpy-fixed`` run
directory: its configuration (``metrics.json``) and the formats its checkpoint recorded.
Both engines start from the run's initial network at epoch 1's rate and see epoch 1's
batches; nothing is written.

    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --learning [--batches 10]
        training accuracy (nudged outputs, as the run's log) of float and integers when
        only some projections learn: the output alone, then one more hidden layer each
        time, then all. The others' learning epochs are skipped (an instrumented engine,
        not a model option).
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --signals [--noise 0.01]
        weights frozen (the normalisers still adapt, the errors still flow): the relative
        RMS difference per layer of the rates r and errors e between integers and float
        over the first batch, and as a control between float and float on inputs with
        ``--noise`` x their standard deviation of Gaussian noise added.
    --float-payload-bits B   one integer effect added to float: the float twin's gained
        payloads ``g r`` rounded to B fraction bits and clipped to 8 signed bits, as the
        integers send them (``quantize.network.GAIN_PAYLOAD_BITS``: 4).
    --float-start-integers   another: the float twin starts from the integers' initial
        weights and biases (dequantised), not the float ones they were rounded from.
    --all-only   --learning for all projections only.
    --gain-payload-bits B   the integers' summed gained payloads B bits wide (the run's
        ``fixed_point.gain_payload_bits``, else the default 16; 8: the learning payload
        itself, as before 2026-12-02).
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --train OUT [effects above]
        the float twin with those integer effects trained over the run's whole schedule
        (epochs, rate halving, batches) into OUT, as the run trains its twin (checkpoints,
        resume, OUT/log.txt); prints the training and test accuracy per epoch.

Measured results: ``docs/experiments.md``, "Session 16".
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from dataclasses import asdict, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle.backends import make_engine  # noqa: E402
from lava_gle.experiments import mnist1d  # noqa: E402
from lava_gle.experiments import training as T  # noqa: E402
from lava_gle.experiments.checkpoint import Checkpoint  # noqa: E402

#: Step windows of the first batch over which --signals compares.
WINDOWS = ((0, 10), (10, 60), (60, 200), (200, None))


def load_run(run: Path, payload_width: int | None = None):
    """(config, data, train config, float network, integer network) of a run directory;
    ``payload_width``: the integers' ``gain_payload_bits`` instead of the run's."""
    raw = json.loads((run / "metrics.json").read_text())["config"]
    config = mnist1d.Mnist1dConfig(**{k: tuple(v) if isinstance(v, list) else v
                                      for k, v in raw.items()})
    data = mnist1d.load_data(config)
    net, cfg = mnist1d.training_setup(config)
    recorded = Checkpoint(run, {}).recorded_config()
    if recorded is None or "fixed_point" not in recorded:
        raise SystemExit(f"{run}: no checkpoint with recorded formats (a numpy-fixed run "
                         f"of lava-gle 0.x from session 15 on)")
    net = T.start_network(net, cfg)
    netq = T.with_formats(net, recorded["fixed_point"])
    if payload_width is not None:
        netq = replace(netq, fixed_point={**netq.fixed_point,
                                          "gain_payload_bits": payload_width})
    return config, data, cfg, net, netq


def engines(net, netq, learning: set[int] | None, payload_bits: int | None = None,
            start_integers: bool = False, dtype=np.float64):
    """Float and integer engines, learning on; only the projections ``learning`` (layer
    indices; None: all) run their learning epochs. ``payload_bits``: the float engine's
    gained payloads on the integers' 8-bit grid with that many fraction bits;
    ``start_integers``: the float engine starts from the integers' W and b; ``dtype``:
    the float engine's."""
    out = []
    for n, backend in ((net, "numpy"), (netq, "numpy-fixed")):
        e = make_engine(n, backend, optimizer=None,
                        **({"dtype": dtype} if backend == "numpy" else {}))
        e.learning = True
        for i, layer in enumerate(e.kernels.layers):
            if learning is not None and i not in learning:
                layer.learn_synapses = lambda *a, **k: None
            if payload_bits is not None and backend == "numpy" and layer.gain_ms is not None:
                layer.rate = lambda st, k=layer, s=2.0 ** payload_bits: np.clip(
                    np.round(st.r * k.gain * s), -128, 127) / s
        out.append(e)
    if start_integers:
        for fl, il in zip(out[0].kernels.layers, out[1].kernels.layers):
            fl.W[...], fl.b[...] = il.decode("W", il.W), il.decode("b", il.b)
    return out


def probe_learning(run: Path, batches: int, payload_bits: int | None,
                   start_integers: bool, all_only: bool,
                   payload_width: int | None = None) -> None:
    config, data, cfg, net, netq = load_run(run, payload_width)
    order = T.epoch_order(data.y_train, config.seed, 0, cfg.balanced_batches)
    n = len(net.layers)
    sets = [set(range(k, n)) for k in range(0 if all_only else n - 1, -1, -1)]
    print(f"{run}: training accuracy over epoch 1's first {batches} batches "
          f"({batches * cfg.batch} sequences)")
    print("| projections learning | float | integers | gap |\n| --- | --- | --- | --- |")
    for learning in sets:
        correct = []
        for engine in engines(net, netq, learning, payload_bits, start_integers):
            hits = 0
            for b in range(batches):
                idx = order[b * cfg.batch:(b + 1) * cfg.batch]
                logits, _ = T.stream_batch(engine, data.x_train[idx], data.y_train[idx],
                                           cfg.readout_start, True, cfg.teach_start,
                                           cfg.target_rate)
                hits += int(np.sum(logits.argmax(-1) == data.y_train[idx]))
            correct.append(100.0 * hits / (batches * cfg.batch))
        names = ", ".join(net.layers[i].name for i in sorted(learning))
        print(f"| {names} | {correct[0]:.1f} | {correct[1]:.1f} | "
              f"{correct[0] - correct[1]:+.1f} |", flush=True)


def train_float(run: Path, out: Path, payload_bits: int | None,
                start_integers: bool) -> None:
    config, data, cfg, net, netq = load_run(run)

    def make(n, backend, optimizer=None, dtype=np.float64):  # engines()' float one
        return engines(n, netq, None, payload_bits, start_integers, dtype)[0]

    T.make_engine = make  # train_classifier's engine
    effects = {"payload_bits": payload_bits, "start_integers": start_integers}
    result = T.train_classifier("float with integer effects", net, data, cfg, out,
                                {"effects": effects, **asdict(config)}, "numpy",
                                config.seed, True)
    print(json.dumps({k: result.history[k] for k in ("train_acc", "test_acc")}))


def probe_signals(run: Path, noise: float, payload_bits: int | None,
                  start_integers: bool, payload_width: int | None = None) -> None:
    config, data, cfg, net, netq = load_run(run, payload_width)
    idx = T.epoch_order(data.y_train, config.seed, 0, cfg.balanced_batches)[:cfg.batch]
    xs = np.ascontiguousarray(data.x_train[idx].transpose(1, 0, 2))
    y = T.onehot_targets(data.y_train[idx], net.output_size, cfg.target_rate)
    ys = np.broadcast_to(y, (xs.shape[0],) + y.shape)
    keys = [f"{v}.{layer.name}" for layer in net.layers for v in ("r", "e")]
    f, i = engines(net, netq, set(), payload_bits, start_integers)
    noisy, _ = engines(net, netq, set())
    rng = np.random.default_rng(0)
    runs = [e.run(x, ys, record=keys) for e, x in (
        (f, xs), (i, xs), (noisy, xs + noise * np.std(xs) * rng.standard_normal(xs.shape)))]
    heads = [f"steps {a}-{b if b else xs.shape[0]}" for a, b in WINDOWS]
    print(f"{run}: weights frozen, first batch; relative RMS difference to float "
          f"(integers / float with {noise:g} input noise)")
    print("| signal | " + " | ".join(heads) + " |\n| --- |" + " --- |" * len(heads))
    for key in keys:
        cells = []
        for a, b in WINDOWS:
            ref = runs[0][key][a:b]
            scale = np.sqrt(np.mean(ref ** 2))
            cells.append(" / ".join(f"{np.sqrt(np.mean((r[key][a:b] - ref) ** 2)) / scale:.2f}"
                                    for r in runs[1:]))
        print(f"| {key} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--learning", action="store_true")
    what.add_argument("--signals", action="store_true")
    what.add_argument("--train", type=Path, metavar="OUT")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--float-payload-bits", type=int, default=None)
    parser.add_argument("--float-start-integers", action="store_true")
    parser.add_argument("--all-only", action="store_true")
    parser.add_argument("--gain-payload-bits", type=int, default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.train is not None:
        train_float(args.run, args.train, args.float_payload_bits, args.float_start_integers)
    elif args.learning:
        probe_learning(args.run, args.batches, args.float_payload_bits,
                       args.float_start_integers, args.all_only, args.gain_payload_bits)
    else:
        probe_signals(args.run, args.noise, args.float_payload_bits, args.float_start_integers,
                      args.gain_payload_bits)


if __name__ == "__main__":
    main()
