"""A classification experiment's run: train, measure on the other backends, write.

:func:`run_classification` is the part the MNIST-1D and Yin-Yang experiments share: it
trains (:func:`lava_gle.experiments.training.train_classifier`; in fixed point after
its float twin, :mod:`lava_gle.experiments.fixed_training`), then measures the trained
network in fixed point and through Lava (:func:`other_backend_metrics`), and writes
``metrics.json``, the trained network and a figure.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lava_gle.backends import BACKENDS, make_engine, simulate
from lava_gle.backends import twin as backend_twin
from lava_gle.calibration import calibrate
from lava_gle.description import save_network
from lava_gle.errors import LavaGleError
from lava_gle.experiments.checkpoint import Checkpoint, run_lock, run_record
from lava_gle.experiments.fixed_training import (
    fixed_training_metrics, formats_from_float, formats_record, resumed_formats, with_formats,
)
from lava_gle.experiments.metrics import RunLog
from lava_gle.experiments.rules import FORMAT_SOURCES, TWIN_IGNORES
from lava_gle.experiments.training import (
    RESUMABLE_CHANGES, Dataset, TrainConfig, TrainResult, check_resumed_epoch_steps,
    SCHEDULE, check_resumed_epochs, frozen_network, inference_network, onehot_targets,
    one_stream_accuracy, predict, schedule_plan, scheduled_network, switch_epoch_steps,
    train_classifier,
)
from lava_gle.network import Network
from lava_gle.results import pyplot, save_figure, write_metrics

#: The trained network a classification run writes
#: (:func:`~lava_gle.experiments.training.trained_network`).
TRAINED_NETWORK = "network_trained.json"

#: What a fixed-point run trains (``--part``): both and the metrics, or one half of it.
PARTS = ("all", "twin", "integers")


def run_classification(name: str, title: str, net: Network, data: Dataset, cfg: TrainConfig,
                       config, out_dir: str | Path, backend: str, quiet: bool, guard,
                       fresh: bool, extras: Callable[[TrainResult], dict] | None = None,
                       part: str = "all"
                       ) -> tuple[dict[str, Any], TrainResult, RunLog] | None:
    """Train a streamed classifier and write its results: the part every classification
    experiment shares.

    ``config`` is the experiment's config dataclass (with ``seed`` and
    ``lava_sequences``); ``extras(result)`` adds experiment-specific metrics. Writes
    ``metrics.json`` (once before and once after the other backends' evaluation, which
    may take long) and ``<name>.png``; returns ``(metrics, result, log)``. Holds
    ``out_dir/run.lock`` (:func:`run_lock`) while it trains and writes.

    Training in fixed point (``numpy-fixed``) first calibrates the formats on the first
    ``cfg.test_batch`` training sequences and their one-hot targets at every step
    (:func:`lava_gle.calibration.calibrate`, error formats included), then
    adds to the metrics: ``saturation`` (values clipped while training, by counter),
    ``test_accuracy_float_same_rule`` (the same training on ``numpy``, in
    ``out_dir/float_same_rule``; its checkpoint does not compare
    :data:`~lava_gle.experiments.rules.TWIN_IGNORES`, so a copy of it serves runs that
    differ in those only), ``lava_fixed_agreement``
    (:func:`~lava_gle.experiments.fixed_training.lava_fixed_agreement`,
    ``config.agreement_steps`` steps) and, for batch > 1, ``batch_semantics``: B copies
    whose updates are summed into one learning-engine epoch per step, which no single
    chip streaming one sample at a time does.

    ``part`` (fixed point; :data:`PARTS`): ``twin`` trains the float twin only (holding
    ``out_dir/float_same_rule/run.lock``), ``integers`` the fixed-point run only (holding
    ``out_dir/run.lock``; with ``formats="float"`` and no checkpoint of its own that
    records them, after the twin's end), so that two processes can train them at once;
    both return None and write no metrics. A later run with ``part="all"`` resumes what
    they trained and writes them.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fixed = BACKENDS[backend].arithmetic != "float"
    if config.formats not in FORMAT_SOURCES:
        raise LavaGleError(f"formats must be one of {list(FORMAT_SOURCES)}, "
                           f"got {config.formats!r}")
    if part not in PARTS:
        raise LavaGleError(f"--part must be one of {list(PARTS)}, got {part!r}")
    if part != "all" and not fixed:
        raise LavaGleError(f"--part {part}: only a fixed-point run has parts (its float twin "
                           f"and its integers); a {backend} run trains one network: leave "
                           "--part out")
    twin_dir = out / "float_same_rule"
    if fixed:
        twin_dir.mkdir(exist_ok=True)
    run_config = run_record(name, backend, config)
    if fixed and not fresh:  # refused now, not after the twin's training (hours, online)
        saved = (Checkpoint(twin_dir, run_record(name, "numpy", config),
                            RESUMABLE_CHANGES + TWIN_IGNORES),
                 Checkpoint(out, run_config, RESUMABLE_CHANGES + ("fixed_point",)))
        for ckpt in saved:  # another run's checkpoint: refused as such first
            ckpt.check()
        check_twin_schedule(*saved, cfg, net.learning.epoch_steps)
        for ckpt, resumes in zip(saved, (part != "integers", part != "twin")):
            if resumes:  # (a twin --part integers needs is checked as it resumes)
                check_resumed_epochs(ckpt, cfg)

    def train_twin() -> TrainResult:
        return train_classifier(f"{name} float same rule", net, data, cfg, twin_dir,
                                run_record(name, "numpy", config), "numpy", config.seed,
                                quiet, guard, fresh, ignored=TWIN_IGNORES)
    if part == "twin":
        with run_lock(twin_dir):
            train_twin()
        return None
    with run_lock(out), (run_lock(twin_dir) if fixed and part == "all"
                         else contextlib.nullcontext()):
        twin = None
        if fixed:
            recorded = None if fresh else resumed_formats(out, run_config)
            needs_twin = recorded is None and config.formats == "float"
            if part == "integers" and needs_twin and not _finished(twin_dir, cfg.epochs):
                raise LavaGleError(
                    "--part integers: this run sizes its fixed-point formats from its float "
                    f"twin's end (--formats float), and {out} has no checkpoint of it that "
                    "records them; train the twin to its end first (--part twin, or no "
                    "--part), or size them from the initial network (--formats initial)")
            x_cal = data.x_train[:cfg.test_batch].transpose(1, 0, 2)
            y_cal = onehot_targets(data.y_train[:cfg.test_batch], net.output_size,
                                   cfg.target_rate)
            y_cal = np.broadcast_to(y_cal, x_cal.shape[:1] + y_cal.shape)
            if recorded is not None:  # its integers checked before the twin trains on
                net = calibrate(with_formats(net, recorded), x_cal, y_cal)
                ckpt = Checkpoint(out, run_config, RESUMABLE_CHANGES + ("fixed_point",))
                then, _ = check_resumed_epoch_steps(ckpt, net.learning.epoch_steps)
                early = make_engine(scheduled_network(net.with_learning(epoch_steps=then), cfg),
                                    backend)
                ckpt.restore({"train.": early})
                switch_epoch_steps(early, net.learning.epoch_steps, ckpt)
            if part == "all" or needs_twin:  # a finished twin resumes without training
                twin = train_twin()
            if recorded is None:
                if config.formats == "float":
                    net = formats_from_float(
                        net, frozen_network(net, twin.engine), x_cal, y_cal,
                        weights=[k.W for k in twin.engine.kernels.layers],
                        eta=cfg.eta(cfg.epochs - 1))
                elif config.weight_range is not None:
                    net = replace(net, fixed_point={**net.fixed_point, "weight_headroom": 1.0,
                                                    "weight_range": config.weight_range})
                net = calibrate(net, x_cal, y_cal)
            run_config["fixed_point"] = formats_record(net)
        result = train_classifier(name, net, data, cfg, out, run_config, backend, config.seed,
                                  quiet, guard, fresh)
        if part == "integers":
            return None
        h = result.history
        log = RunLog(out, quiet)
        metrics = {
            "experiment": name, "backend": backend, "seed": config.seed,
            "config": asdict(config),
            "test_accuracy": h["test_acc"][-1], "best_test_accuracy": max(h["test_acc"]),
            "train_accuracy": h["train_acc"][-1], "test_loss": h["test_loss"][-1],
            "epochs": len(h["test_acc"]), "history": h, "wall_time_s": result.wall_time_s,
            "steps": result.steps, "steps_per_s": result.steps / result.wall_time_s,
        }
        if "test_acc_unaveraged" in h:
            metrics["test_accuracy_unaveraged"] = h["test_acc_unaveraged"][-1]
        if cfg.batch == 1:  # online: tested as a chip tests, too (one stream)
            metrics["test_accuracy_one_stream"] = one_stream_accuracy(result.engine, data, cfg)
            log(f"{name}: test accuracy in one stream {metrics['test_accuracy_one_stream']:.4f}"
                f" ({cfg.test_batch} streams side by side: {metrics['test_accuracy']:.4f})")
        if fixed:
            metrics.update(fixed_training_metrics(net, data, cfg, config, result, twin, log,
                                                  out, backend))
        if extras is not None:
            metrics.update(extras(result))
        write_metrics(out, metrics)
        save_network(result.network, out / TRAINED_NETWORK)
        other = other_backend_metrics(result.network, data, cfg, backend,
                                      config.lava_sequences, log)
        other["not_measured"] = {**metrics.get("not_measured", {}), **other["not_measured"]}
        metrics.update(other)
        if not fixed:
            metrics["compare_case_fixed"] = write_inference_case(
                out / "compare_case_fixed", result.network, data, cfg, config.lava_sequences)
            metrics.update(fixed_point_loss(metrics, log))
        write_metrics(out, metrics)
        plot_history(h, out / f"{name}.png", title)
        return metrics, result, log


def check_twin_schedule(twin: Checkpoint, integers: Checkpoint, cfg: TrainConfig,
                        steps: int) -> None:
    """Refuse to resume a fixed-point run where its float twin (``twin``) and its integers
    (``integers``) would train some epoch under different settings (:data:`SCHEDULE`: the
    rate, the learning epochs' length, the average's window;
    :func:`~lava_gle.experiments.training.schedule_plan`): each changes a setting where it
    resumes, so a twin trained ahead (``--part twin``) under the old settings would not be
    the integers' rule. ``steps``: the learning epochs' length asked for."""
    for ckpt in (twin, integers):  # a change inside an epoch: refused as such
        check_resumed_epoch_steps(ckpt, steps)
    plans = [schedule_plan(ckpt, cfg, steps) for ckpt in (twin, integers)]
    first = min(((e, key) for key in SCHEDULE
                 for e, (a, b) in enumerate(zip(plans[0][key], plans[1][key])) if a != b),
                default=None)
    if first is None:
        return
    e, key = first
    flag, say = SCHEDULE[key]
    asked = {"lr": cfg.halve_every, "epoch_steps": steps, "average_window": cfg.average_window}
    records = [ckpt.record() or ({}, {"epoch": 0, "batch": 0}) for ckpt in (twin, integers)]
    ran = [progress["epoch"] for _, progress in records]
    begun = [progress["epoch"] + (progress["batch"] > 0) for _, progress in records]
    where = (f"the float twin and the integers differ in epoch {e + 1}: "
             f"{say.format(plans[0][key][e])} in the twin ({twin.path.parent}), "
             f"{plans[1][key][e]:g} in the integers ({integers.path.parent}), so the twin "
             "would not be the integers' rule")
    if e < min(ran):
        raise LavaGleError(f"{flag} {asked[key]:g}: {where}; pass --fresh to start over")
    # the run that has begun epoch e + 1 holds the old setting there: both finish the
    # epochs either has begun with it (the plain command trains the twin, then the
    # integers, as a run whose formats come from the twin needs), then both change
    ahead = int(begun[1] > begun[0])
    theirs = records[ahead][0].get("halve_every", 0) if key == "lr" else plans[ahead][key][e]
    level = max(begun)
    raise LavaGleError(
        f"{flag} {asked[key]:g}: {where} (the twin has begun {begun[0]} epochs, the "
        f"integers {begun[1]}); run both to epoch {level} with the setting they began it "
        f"with (--epochs {level} {flag} {theirs:g}, without --part), then change both, or "
        "pass --fresh to start over")


def _finished(run_dir: Path, epochs: int) -> bool:
    """Whether ``run_dir`` holds the checkpoint of a run trained to its ``epochs``."""
    saved = Checkpoint(run_dir, {}).record()
    return saved is not None and saved[1]["epoch"] >= epochs and saved[1]["batch"] == 0


#: The fixed-point inference measured after training (:func:`other_backend_metrics`):
#: key suffix of ``test_accuracy_fixed`` and ``fixed_point_warning`` -> backend.
FIXED_INFERENCE = {"": "numpy-fixed", "_chip": "numpy-fixed-chip"}


#: Test accuracy (a fraction) a float-trained network may lose when it runs in fixed point
#: before its run says so: the 2 points within which the project's targets ask the
#: integers to follow float.
FIXED_POINT_LOSS_NOTE = 0.02


def fixed_point_loss(metrics: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    """``fixed_point_loss``: per fixed-point inference backend measured
    (:data:`FIXED_INFERENCE`), the float run's ``test_accuracy`` minus the trained
    network's in that backend (a fraction; negative: fixed point did better), and a
    warning in the log for each loss above :data:`FIXED_POINT_LOSS_NOTE`, so a deployment
    that falls well below float is not seen in the headline numbers only; the warning gives
    the command of ``metrics["compare_case_fixed"]`` (:func:`write_inference_case`), which
    shows which layer loses it. Empty where no backend was measured."""
    loss = {}
    for suffix, backend in FIXED_INFERENCE.items():
        fixed = metrics.get(f"test_accuracy_fixed{suffix}")
        if fixed is None:
            continue
        loss[backend] = metrics["test_accuracy"] - fixed
        if loss[backend] > FIXED_POINT_LOSS_NOTE:
            log(f"warning: in fixed point ({backend}) the trained network tests at "
                f"{fixed:.1%}, {100 * loss[backend]:.1f} points below float's "
                f"{metrics['test_accuracy']:.1%}; in the run's directory "
                f"`{metrics['compare_case_fixed']['command']}` shows which layer loses it "
                "(docs/fixed-point.md)")
    return {"fixed_point_loss": loss} if loss else {}


def inference_calibrated(net: Network, data: Dataset, cfg: TrainConfig) -> Network:
    """``net`` with the fixed-point formats a deployment would calibrate
    (:func:`lava_gle.calibration.calibrate`) on the first ``cfg.test_batch`` training
    sequences: the network the fixed-point inference of a float-trained run measures."""
    return calibrate(net, data.x_train[:cfg.test_batch].transpose(1, 0, 2))


def write_inference_case(out_dir: Path, net: Network, data: Dataset, cfg: TrainConfig,
                         sequences: int) -> dict[str, Any]:
    """Write a float-trained network's fixed-point inference as a case for ``lava-gle
    compare``: ``out_dir/network.json``, ``net`` calibrated as its fixed-point test accuracy
    was measured (:func:`inference_calibrated`) with learning off
    (:func:`~lava_gle.experiments.training.inference_network`), and ``inputs.npy``
    [steps, n, in], the first ``n = max(sequences, 1)`` test sequences, each from the zero
    state. Returns ``{"dir", "sequences", "command"}`` (the compare command of float against
    ``numpy-fixed``, paths relative to the experiment's directory)."""
    n = max(sequences, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_network(inference_network(inference_calibrated(net, data, cfg)),
                 out_dir / "network.json")
    np.save(out_dir / "inputs.npy", np.ascontiguousarray(data.x_test[:n].transpose(1, 0, 2)))
    d = out_dir.name
    return {"dir": d, "sequences": n,
            "command": f"lava-gle compare {d}/network.json --inputs {d}/inputs.npy "
                       f"--backends numpy,numpy-fixed --out compare_fixed"}


def other_backend_metrics(net: Network, data: Dataset, cfg: TrainConfig, trained_on: str,
                          n_lava: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Test accuracy in fixed point and the Lava/engine agreement, where those backends exist.

    The fixed-point formats are calibrated (:func:`lava_gle.calibration.calibrate`) on
    the first ``cfg.test_batch`` training sequences, as a deployment would do; the options it
    chose are ``fixed_point_calibration``.
    ``test_accuracy_fixed``: the trained network on the whole test set with
    ``numpy-fixed`` (same streaming as the float test accuracy);
    ``test_accuracy_fixed_chip`` the same with ``numpy-fixed-chip`` (chip timing; learning
    is off, so no backward array learns and it gives the integers of exact timing). The
    backend a fixed-point run trained on is left out (its test accuracy is the trained
    integers'; the other timing, learning off, repeats them from the run's written
    description).
    ``lava_agreement``: the first ``n_lava`` test sequences, each from the zero state
    (Lava has no batch axis and resets between sequences; the engine twin runs them
    as independent batch elements, which is the same thing), through
    :func:`lava_gle.backends.simulate`; the fraction where ``lava-float`` (and
    ``lava-fixed``) predict the class of their twin (:func:`lava_gle.backends.twin`:
    ``numpy`` resp. ``numpy-fixed-chip``).
    A backend that is missing or fails with a LavaGleError gives ``None``, a log line
    and an entry in ``not_measured``.
    """
    out: dict[str, Any] = {**{f"test_accuracy_fixed{s}": None for s in FIXED_INFERENCE},
                           "lava_agreement": None, "lava_agreement_by_backend": {},
                           "not_measured": {}}
    net = inference_calibrated(net, data, cfg)
    out["fixed_point_calibration"] = {
        "input_range": net.fixed_point["input_range"],
        "layers": {l.name: dict(l.fixed_point) for l in net.layers}}

    def attempt(key: str, backend: str, measure: Callable[[], Any]) -> Any:
        if backend not in BACKENDS:
            reason = f"backend {backend} is not built yet"
        else:
            try:
                return measure()
            except LavaGleError as exc:
                reason = f"{backend}: {exc}"
            except Exception as exc:  # an optional extra must never lose the trained result
                reason = f"{backend} failed: {type(exc).__name__}: {exc}"
        out["not_measured"][key] = reason
        log(f"{key} not measured: {reason}")
        return None

    def fixed_accuracy(backend: str, suffix: str) -> float:
        with warnings.catch_warnings(record=True) as caught:  # one saturation note per batch
            warnings.simplefilter("always")
            logits, _ = predict(net, data.x_test, data.y_test, backend,
                                cfg.test_batch, cfg.readout_start)
        if caught:  # the counts are cumulative: the last note has the totals
            out[f"fixed_point_warning{suffix}"] = str(caught[-1].message)
            log(f"{backend}: {caught[-1].message}")
        return float(np.mean(np.argmax(logits, -1) == data.y_test))

    for suffix, backend in FIXED_INFERENCE.items():
        key = f"test_accuracy_fixed{suffix}"
        if backend != trained_on:
            out[key] = attempt(key, backend, lambda b=backend, s=suffix: fixed_accuracy(b, s))
    x = np.ascontiguousarray(data.x_test[:n_lava].transpose(1, 0, 2))  # [T, n, in]
    eval_net = inference_network(net)

    def logits(backend: str) -> np.ndarray:
        out = simulate(eval_net, x, backend=backend, record=["output"])["output"]
        return out[cfg.readout_start:].sum(axis=0)

    agreements = []
    for lava in ("lava-float", "lava-fixed"):
        if n_lava < 1:
            out["not_measured"][f"lava_agreement[{lava}]"] = "no test sequences asked for Lava"
            continue

        def agreement(lava=lava) -> np.ndarray:
            return np.argmax(logits(backend_twin(lava)), -1) == np.argmax(logits(lava), -1)
        agree = attempt(f"lava_agreement[{lava}]", lava, agreement)
        if agree is not None:
            out["lava_agreement_by_backend"][lava] = float(agree.mean())
            agreements.append(agree)
    if agreements:
        out["lava_agreement"] = float(np.concatenate(agreements).mean())
    return out


def plot_history(history: dict[str, list], path: Path, title: str) -> None:
    """Figure: loss and accuracy per epoch (train and test)."""
    plt = pyplot()
    if plt is None:  # matplotlib is the optional extra lava-gle[plot]
        return
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    ep = np.arange(1, len(history["test_acc"]) + 1)
    ax[0].plot(ep, history["train_loss"], label="train")
    ax[0].plot(ep, history["test_loss"], label="test")
    ax[0].set(title=f"{title}: step cross-entropy", xlabel="epoch")
    ax[1].plot(ep, history["train_acc"], label="train")
    ax[1].plot(ep, history["test_acc"], label="test")
    ax[1].set(title=f"{title}: accuracy", xlabel="epoch", ylim=(0, 1))
    for a in ax:
        a.legend()
        a.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
