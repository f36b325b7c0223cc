"""What a classification run trained in fixed point adds to the float loop.

Its formats, sized from the float run with the same rule (its twin) and recorded in the
checkpoint so that a resumed run keeps them; the metrics only such a run has (saturation,
the twin's accuracy, the backward arrays' drift, where the parameters ended against the
twin's); the compare cases of its start and end;
and whether ``lava-fixed`` learns its very integers (:func:`lava_fixed_agreement`).
:func:`lava_gle.experiments.classification.run_classification` calls them.
"""
from __future__ import annotations

import json
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lava_gle.backends import simulate
from lava_gle.backends import twin as backend_twin
from lava_gle.calibration import calibrate
from lava_gle.description import save_network
from lava_gle.errors import LavaGleError
from lava_gle.experiments.checkpoint import Checkpoint
from lava_gle.experiments.training import (
    RESUMABLE_CHANGES, Dataset, TrainConfig, TrainResult, epoch_order, one_stream_accuracy,
    onehot_targets, scheduled_network,
)
from lava_gle.network import Network
from lava_gle.numerics import fixed as X
from lava_gle.quantize import (
    BiasTraceWarning, QuantizationError, QuantizationWarning, quantize_network,
)
from lava_gle.quantize.formats import weight_exp


def formats_record(net: Network) -> dict[str, Any]:
    """The ``fixed_point`` options of ``net`` and of each of its layers, JSON-ready: what a
    fixed-point run's checkpoint records, so that a resumed run keeps its formats even
    where their source has changed (a float twin trained for more epochs)."""
    return json.loads(json.dumps(
        {"network": net.fixed_point, "layers": {l.name: l.fixed_point for l in net.layers}},
        default=lambda v: v.tolist()))


def resumed_formats(out: Path, run_config: dict[str, Any]) -> dict[str, Any] | None:
    """The formats (:func:`formats_record`) the checkpoint in ``out`` recorded, where it is
    one of the same run (settings equal but for :data:`RESUMABLE_CHANGES`), else None."""
    recorded = Checkpoint(out, {}).recorded_config()
    if recorded is None or "fixed_point" not in recorded:
        return None
    mine = json.loads(json.dumps(run_config))
    same = all(recorded.get(k) == v for k, v in mine.items() if k not in RESUMABLE_CHANGES)
    return recorded["fixed_point"] if same else None


def with_formats(net: Network, record: dict[str, Any]) -> Network:
    """``net`` with the ``fixed_point`` options of ``record`` (:func:`formats_record`)."""
    return replace(net, fixed_point=record["network"], layers=tuple(
        replace(l, fixed_point=record["layers"][l.name]) for l in net.layers))


#: ``batch_semantics`` of a fixed-point run at batch > 1.
FIXED_BATCH_NOTE = ("approximation: {batch} copies of the network whose learning-engine "
                    "updates are summed into one weight update per step (a mean of their "
                    "local signals); a single chip streams one sample at a time (batch 1)")


#: Room the fixed-point biases get above the largest float bias (``formats_from_float``).
#: More than the weights': the integers' output biases end up to 0.29 above the float
#: twin's (largest 0.70) and clipped at a 1.25x range (MNIST-1D seed 1, session 14).
#: Where the exponent this asks puts a layer's bias learning gain below the learning
#: engine's smallest, the layer's biases get the weights' headroom instead.
BIAS_HEADROOM = 2.0


def formats_from_float(net: Network, trained: Network, x: np.ndarray,
                       targets: np.ndarray, headroom: float = 1.25,
                       weights: list[np.ndarray] | None = None,
                       eta: float | None = None) -> Network:
    """``net`` with fixed-point formats sized for what training will make of it: from
    ``trained``, the same network after the float run with the same rule.

    Per layer, the weight and bias exponents hold ``headroom`` times the largest |W|
    resp. :data:`BIAS_HEADROOM` times the largest |b| of the initial and the trained
    network (``weight_exp``, ``bias_exp``; the bias exponent of ``headroom`` where the
    larger one leaves the bias learning gain below the learning engine's smallest), and
    ``u_bits`` / ``rate_bits`` / ``error_bits`` / ``error_trace_range`` fit the signals on
    ``x`` [T, B, in] with ``targets`` [T, B, out] of both the initial and the trained
    network (:func:`lava_gle.calibration.calibrate`; the wider of the two formats: the
    integers start from the one and move towards the other). A frozen projection
    (``eta_scale`` 0) gets no exponents here: its parameters stay as they start, and the
    quantiser sizes them without learning headroom. Options the description
    sets win. On a chip this is the host's choice of formats before deployment; the
    integers then learn from ``net``'s initial parameters.

    ``weights``: the trained weights as the float kernels hold them (default: those of
    ``trained``). With gains (``gain_decay``) ``trained`` has them folded in (``W
    diag(g)``, :func:`~lava_gle.experiments.training.frozen_network`) while the integers
    learn ``W`` itself. A layer with an error normaliser takes no calibrated
    ``error_trace_range``: its trace spans the normalised error (``quantize_network``).

    ``eta``: the smallest rate the integers will learn at (default: ``net``'s), at which
    the bias learning gains are judged.
    """
    cal = calibrate(trained, x, targets)
    first = calibrate(net, x, targets)
    layers = []
    narrow = {}  # layer name -> the bias exponent at the weights' headroom
    for i, (layer, tuned, start) in enumerate(zip(net.layers, cal.layers, first.layers)):
        wider = {k: (min if k.endswith("_bits") else max)(v, start.fixed_point.get(k, v))
                 for k, v in tuned.fixed_point.items()}
        if layer.error_norm_decay is not None:
            wider.pop("error_trace_range", None)
        o = {**wider, **layer.fixed_point}
        if not net.plastic(i):  # frozen: the quantiser sizes what stays as it is
            layers.append(replace(layer, fixed_point=o))
            continue
        w_end = trained.initial_weights(i) if weights is None else weights[i]
        w = np.maximum(np.abs(net.initial_weights(i)), np.abs(w_end))
        o.setdefault("weight_exp", weight_exp(w, headroom, 0.0))
        if layer.bias:
            b = np.maximum(np.abs(net.initial_biases(i)), np.abs(trained.initial_biases(i)))
            if "bias_exp" not in o:
                o["bias_exp"] = weight_exp(b, BIAS_HEADROOM, 2.0 ** -8)
                narrow[layer.name] = weight_exp(b, headroom, 2.0 ** -8)
        layers.append(replace(layer, fixed_point=o))
    sized = replace(net, layers=tuple(layers),
                    fixed_point={**cal.fixed_point, **net.fixed_point})
    return _learnable_biases(sized, narrow, net.learning.eta if eta is None else eta)


def _learnable_biases(net: Network, narrow: dict[str, int], eta: float) -> Network:
    """``net`` with the bias exponent of each layer named in ``narrow`` lowered to the
    given one where ``net``'s leaves the layer's bias learning gain at rate ``eta`` below
    the learning engine's smallest (where the quantiser would coarsen the layer's error
    trace for it, a :class:`BiasTraceWarning`, or refuse, a :class:`QuantizationError` on
    ``bias_exp``). Where the lowered exponent does not suffice either, the caller's own
    ``quantize_network`` coarsens the trace, and any refusal is left to it too."""
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", QuantizationWarning)
                warnings.simplefilter("error", BiasTraceWarning)
                quantize_network(net.with_learning(eta=eta))
            return net
        except (QuantizationError, BiasTraceWarning) as exc:
            if exc.field != "bias_exp" or exc.layer not in narrow:
                return net
            exp = narrow.pop(exc.layer)
            net = replace(net, layers=tuple(
                replace(l, fixed_point={**l.fixed_point, "bias_exp": exp})
                if l.name == exc.layer else l for l in net.layers))


def fixed_training_metrics(net: Network, data: Dataset, cfg: TrainConfig, config,
                           result: TrainResult, twin: TrainResult,
                           log: Callable[[str], None], out: Path, backend: str
                           ) -> dict[str, Any]:
    """The metrics of a run trained in fixed point (see
    :func:`~lava_gle.experiments.classification.run_classification`;
    ``twin``: the float run with the same rule); writes ``out/compare_case`` (the run's
    start, with the learning epochs of its first epoch) and ``out/compare_case_end`` (the
    float twin's trained network, its normalisers' state included, at the last epoch's
    rate and learning epochs) with :func:`write_compare_case`. Under chip
    timing ``transpose_drift``: per layer with a backward array, the largest ``|B - W^T|``
    and its RMS over synapses and learning steps of the run, in weight LSBs
    (:meth:`~lava_gle.numerics.kernels.FixedLayer.transpose_drift`). Always
    ``parameters_vs_float`` (:func:`parameters_vs_float`)."""
    metrics: dict[str, Any] = {"saturation": dict(result.engine.saturation)}
    clipped = sorted((k, n) for k, n in metrics["saturation"].items() if n)
    log(f"{net.name}: values clipped while training (metrics.json, saturation): " + (
        ", ".join(f"{k} {n:,}" for k, n in clipped) if clipped else "none"))
    backward = {k.name: k.transpose_drift() for k in result.engine.kernels.layers
                if getattr(k, "B", None) is not None}
    if backward:  # chip timing: how far the backward arrays drifted from W^T
        metrics["transpose_drift"] = backward
    apart = parameters_vs_float(result.engine.kernels.layers, twin.engine.kernels.layers)
    metrics["parameters_vs_float"] = apart
    log(f"{net.name}: RMS |integers - float twin| in LSB: " + ", ".join(
        f"{layer} " + " ".join(f"{kind} {v['rms_lsb']:.1f}" for kind, v in kinds.items())
        for layer, kinds in apart.items()))
    if cfg.batch > 1:
        metrics["batch_semantics"] = FIXED_BATCH_NOTE.format(batch=cfg.batch)
    metrics["formats"] = {"source": config.formats,
                          "layers": {l.name: dict(l.fixed_point) for l in net.layers},
                          "exponents": {ql.name: {"weight_exp": ql.w_exp, "bias_exp": ql.b_exp}
                                        for ql in result.engine.kernels.q.layers}}
    # the run's start and end: their epochs' learning epochs (a resumed run may change them)
    first, last = (net.with_learning(epoch_steps=int(result.history["epoch_steps"][i]))
                   for i in (0, -1))
    metrics["compare_case"] = write_compare_case(
        out / "compare_case", scheduled_network(first, cfg), data, cfg, config.seed, backend)
    metrics["compare_case_end"] = write_compare_case(
        out / "compare_case_end", end_network(last, twin.engine.network, cfg), data, cfg,
        config.seed, backend)
    metrics["test_accuracy_float_same_rule"] = twin.history["test_acc"][-1]
    if cfg.batch == 1:
        metrics["test_accuracy_float_same_rule_one_stream"] = one_stream_accuracy(
            twin.engine, data, cfg)
    log(f"{net.name}: float run with the same rule: test accuracy "
        f"{metrics['test_accuracy_float_same_rule']:.4f}" + (
            f" (in one stream {metrics['test_accuracy_float_same_rule_one_stream']:.4f})"
            if cfg.batch == 1 else ""))
    try:
        metrics["lava_fixed_agreement"] = lava_fixed_agreement(
            first, data, cfg, config.seed, config.agreement_steps)
    except LavaGleError as exc:
        metrics["lava_fixed_agreement"] = None
        metrics.setdefault("not_measured", {})["lava_fixed_agreement"] = str(exc)
        log(f"lava_fixed_agreement not measured: {exc}")
    return metrics


def parameters_vs_float(fixed: list, floating: list) -> dict[str, dict[str, dict[str, Any]]]:
    """Where a run's integers ended against the float run with the same rule, which starts
    from the same initial network: per layer (``fixed``: its
    :class:`~lava_gle.numerics.kernels.FixedLayer` kernels, ``floating``: the twin's
    :class:`~lava_gle.numerics.kernels.FloatLayer` kernels, in the same order) and
    parameter (``W``; ``b`` where the layer has a bias; the parameters the run ended with,
    with ``average_window`` the averages it tests), in that parameter's LSB
    (``2**weight_exp``, ``2**bias_exp``): ``rms_lsb`` and ``max_lsb``, the RMS and the
    largest ``|integer - float|``; ``float_rms_lsb``, the RMS of the float values
    themselves; ``at_limit``, how many mantissas stand at the format's ends (-256, 255).

    A parameter the float rule leaves near zero while the integers move it far (``rms_lsb``
    well above ``float_rms_lsb``, mantissas at the limit) is what the error trace's dither
    does when it random-walks a parameter (online MNIST-1D's h0 and h1 biases: about 150 and
    100 LSB against 3 and 20, ``docs/experiments-log.md``, "Session 39")."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for k, f in zip(fixed, floating):
        kinds = {"W": (k.W, f.W, k.ql.scale("W"))}
        if k.ql.bias:
            kinds["b"] = (k.b, f.b, k.ql.scale("b"))
        out[k.name] = {}
        for kind, (q, x, lsb) in kinds.items():
            x = np.asarray(x, np.float64) / lsb
            apart = np.abs(q - x)
            out[k.name][kind] = {
                "rms_lsb": float(np.sqrt(np.mean(apart ** 2))), "max_lsb": float(apart.max()),
                "float_rms_lsb": float(np.sqrt(np.mean(x ** 2))),
                "at_limit": int(np.count_nonzero((q <= X.W_MIN) | (q >= X.W_MAX)))}
    return out


def online_stream(data: Dataset, cfg: TrainConfig, seed: int, steps: int,
                  classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``steps`` steps of epoch 0's training stream (``seed``) at batch 1:
    inputs [steps, 1, in] and the sample's one-hot target rates (``cfg.target_rate``) at
    every step, [steps, 1, classes]."""
    T = data.steps_per_sample
    order = epoch_order(data.y_train, seed, 0, cfg.balanced_batches)[:-(-steps // T)]
    x = data.x_train[order].reshape(-1, 1, data.x_train.shape[2])[:steps]
    y = np.repeat(onehot_targets(data.y_train[order], classes, cfg.target_rate),
                  T, axis=0)[:steps, None]
    return x, y


def end_network(net: Network, trained: Network, cfg: TrainConfig) -> Network:
    """``net`` (its formats) with the parameters and normaliser states of ``trained`` (the
    float run with the same rule after training, :attr:`Engine.network`), learning at the
    rate of the last epoch (``sgd``)."""
    n = len(net.layers)
    out = net.with_parameters([trained.initial_weights(i) for i in range(n)],
                              [trained.initial_biases(i) for i in range(n)])
    out = replace(out, layers=tuple(replace(layer, normaliser_state=t.normaliser_state)
                                    for layer, t in zip(out.layers, trained.layers)))
    if cfg.optimizer != "sgd":
        return out
    return out.with_learning(eta=cfg.eta(cfg.epochs - 1))


#: Learning steps of the compare case a fixed-point run writes (:func:`write_compare_case`).
COMPARE_CASE_STEPS = 8000


def write_compare_case(out_dir: Path, net: Network, data: Dataset, cfg: TrainConfig,
                       seed: int, backend: str = "numpy-fixed",
                       steps: int = COMPARE_CASE_STEPS) -> dict[str, Any]:
    """Write a fixed-point run's set-up as a case for ``lava-gle compare``.

    ``out_dir/network.json``: ``net`` as it is to learn (formats, each projection's
    ``eta_scale``, parameters and ``learning.eta``: :func:`scheduled_network`,
    :func:`end_network`); ``inputs.npy`` [steps, 1, in] and ``targets.npy``
    [steps, 1, classes]: the start of epoch 0's training stream (:func:`online_stream`),
    one-hot targets at every step.
    Returns ``{"dir", "steps", "command"}`` (the compare command, paths relative to the
    experiment's directory: float against the engine twin of ``backend``, the timing the run
    trained with).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    x, y = online_stream(data, cfg, seed, min(steps, len(data.x_train) * data.steps_per_sample),
                         net.output_size)
    save_network(net, out_dir / "network.json")
    np.save(out_dir / "inputs.npy", x)
    np.save(out_dir / "targets.npy", y)
    d = out_dir.name
    return {"dir": d, "steps": len(x),
            "command": f"lava-gle compare {d}/network.json --inputs {d}/inputs.npy "
                       f"--targets {d}/targets.npy --backends numpy,{backend_twin(backend)} "
                       f"--out compare"}


def lava_fixed_agreement(net: Network, data: Dataset, cfg: TrainConfig, seed: int,
                         steps: int) -> dict[str, Any] | None:
    """Whether ``lava-fixed`` learns the very integers of its twin ``numpy-fixed-chip``
    (chip timing, :func:`lava_gle.backends.twin`) online.

    The first ``steps`` steps of epoch 0's training stream (``seed``), at batch 1 and
    learning on at the rate ``cfg.eta(0)``, with the sample's one-hot target at every
    step, run from the initial parameters through both backends
    (:func:`lava_gle.backends.simulate`). ``identical``: every recorded value (output, the
    error ``e`` of every layer) and the final W and b are equal, which for dequantised
    integers (exact multiples of a power of two) means the integers are; ``steps``: those
    the stream had (fewer where the training set is shorter). None for
    ``steps`` 0.
    """
    if steps < 1:
        return None
    x, y = online_stream(data, cfg, seed, steps, net.output_size)
    net = scheduled_network(net, cfg)
    start = time.perf_counter()
    with warnings.catch_warnings():  # saturation notes: counted by the training run
        warnings.simplefilter("ignore")
        a = simulate(net, x, y, backend=backend_twin("lava-fixed"), record=["output", "e"])
        b = simulate(net, x, y, backend="lava-fixed", record=["output", "e"])
    keys = sorted(k for k in a.keys() & b.keys() if not k.startswith("sat."))
    differ = [k for k in keys if not np.array_equal(a[k], b[k])]
    return {"steps": len(x), "batch": 1, "identical": not differ, "differing": differ,
            "compared": keys, "wall_time_s": time.perf_counter() - start}
