"""The streamed classification loop shared by the MNIST-1D and Yin-Yang experiments.

Each sample is a sequence ``x[n]`` of shape [T, in] streamed into the network one
step at a time, ``batch`` samples side by side; the target of every step is the
sample's class (cross-entropy output error), and the prediction is the argmax of
the output logits summed over steps ``readout_start .. T-1``. The network state is
not reset between batches (the paper's MNIST-1D protocol); evaluation starts from
the zero state and streams the test set in order.

Training applies an optimiser (Adam) to the engine's local signals every step and
lowers its learning rate with :class:`ReduceLROnPlateau` on the test loss, as the
paper did. A run checkpoints every ``checkpoint_every_s`` seconds and on Ctrl-C at
the next batch boundary, and resumes bit-exactly (batch order is a pure function of
seed and epoch).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from lava_gle.backends import BACKENDS, make_engine, simulate
from lava_gle.calibration import calibrate
from lava_gle.errors import LavaGleError
from lava_gle.experiments.checkpoint import (
    Checkpoint, ExperimentInterrupted, InterruptGuard, engine_arrays, restore_engine, run_lock,
)
from lava_gle.experiments.metrics import RunLog
from lava_gle.network import Network
from lava_gle.optim import Adam
from lava_gle.results import pyplot, save_figure, write_metrics


@dataclass(frozen=True)
class Dataset:
    """Sequences and labels: ``x_*`` [N, T, in] float, ``y_*`` [N] int class indices."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def steps_per_sample(self) -> int:
        return self.x_train.shape[1]


@dataclass(frozen=True)
class TrainConfig:
    """How to train: epochs, batch, Adam learning rate and its plateau schedule.

    ``readout_start``: first step of a sample whose output enters the summed logits.
    ``teach_start``: first step of a sample with a target; before it the output
    error is zero (the output still shows the previous sample: one step per layer).
    ``balanced_batches``: spread every class evenly over the epoch, so that each batch
    holds the classes in (about) their overall proportions (default: plain shuffling).
    ``dtype``: float type of the engine (``float32`` or ``float64``).
    """

    epochs: int
    batch: int = 100
    lr: float = 1e-3
    plateau_patience: int = 2
    plateau_factor: float = 0.5
    readout_start: int = 0
    teach_start: int = 0
    balanced_batches: bool = False
    dtype: str = "float64"


def epoch_order(labels: np.ndarray, seed: int, epoch: int, balanced: bool = False) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the training samples (a pure function).

    Plain: a permutation from ``default_rng([seed, epoch])``. Balanced: within each class
    a random permutation, and the k-th of n_c samples of class c is placed at
    ``(k + u) / n_c`` on [0, 1) (u uniform), so consecutive batches hold every class in
    about its overall proportion (within one sample per class and batch).
    """
    rng = np.random.default_rng([seed, epoch])
    if not balanced:
        return rng.permutation(len(labels))
    key = np.empty(len(labels))
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        key[members] = (np.arange(len(members)) + rng.uniform(size=len(members))) / len(members)
    return np.argsort(key, kind="stable")


class ReduceLROnPlateau:
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without a new best.

    An epoch improves when its loss is below ``best * (1 - 1e-4)``; after more than
    ``patience`` epochs in a row without improvement the rate drops and the count restarts.
    """

    def __init__(self, patience: int = 2, factor: float = 0.5):
        self.patience = patience
        self.factor = factor
        self.best = np.inf
        self.bad_epochs = 0

    def step(self, loss: float, lr: float) -> float:
        """Record an epoch's ``loss``; return the learning rate for the next epoch."""
        if loss < self.best * (1.0 - 1e-4):
            self.best = loss
            self.bad_epochs = 0
            return lr
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.bad_epochs = 0
            return lr * self.factor
        return lr


def step_cross_entropy(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample mean over steps of CE(softmax(outputs[t, b]), labels[b]): [T, B, C] -> [B]."""
    z = outputs - outputs.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.broadcast_to(labels[None, :, None],
                                                      logp.shape[:2] + (1,)), axis=-1)
    return -picked[..., 0].mean(axis=0)


def stream_batch(engine, x: np.ndarray, labels: np.ndarray, readout_start: int,
                 teach: bool, teach_start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stream one batch ``x`` [B, T, in] through ``engine``.

    With ``teach`` the targets of steps ``teach_start .. T-1`` are ``labels`` [B]
    (the output error drives learning when the engine learns); otherwise, and in
    the steps before, there is no output error.
    Returns (summed logits [B, C], per-sample step cross-entropy [B]).
    """
    xs = np.ascontiguousarray(x.transpose(1, 0, 2))
    if not teach:
        out = engine.run(xs, None, record=["output"])["output"]
    else:
        targets = np.broadcast_to(labels, (xs.shape[0], len(labels)))
        parts = []
        if teach_start > 0:
            parts.append(engine.run(xs[:teach_start], None, record=["output"])["output"])
        parts.append(engine.run(xs[teach_start:], targets[teach_start:],
                                record=["output"])["output"])
        out = np.concatenate(parts)
    return out[readout_start:].sum(axis=0), step_cross_entropy(out[readout_start:], labels)


def frozen_network(net: Network, engine) -> Network:
    """``net`` with the engine's current W, b and tau_m, learning off."""
    trained = net.with_parameters(engine.weights, engine.biases)
    layers = tuple(replace(layer, tau_m=np.array(tau, dtype=np.float64))
                   for layer, tau in zip(trained.layers, engine.tau_m))
    return replace(trained, layers=layers, learning=replace(net.learning, enabled=False))


#: beta of :func:`inference_network`. It never acts (no targets, no output error), but the
#: fixed-point quantiser sizes the error formats from it: beta 0 makes it divide by zero
#: and the training beta 1 overflows its 12-bit factor for linear outputs.
INFERENCE_BETA = 2.0 ** -7


def inference_network(net: Network) -> Network:
    """``net`` for inference: learning off, loss ``mse``, ``beta`` = :data:`INFERENCE_BETA`.

    Without targets no output error is ever formed, so the loss and beta do not change
    any trajectory; stating them this way lets every backend (fixed point included,
    which has no softmax) represent the network.
    """
    return replace(net, learning=replace(net.learning, enabled=False, loss="mse",
                                         beta=INFERENCE_BETA))


def predict(net: Network, x: np.ndarray, labels: np.ndarray, backend: str = "numpy",
            batch: int = 100, readout_start: int = 0, dtype=np.float64,
            progress: bool = False) -> tuple[np.ndarray, float]:
    """Summed logits [N, C] and mean step cross-entropy of ``net`` (learning off) on ``x``.

    The engine starts from the zero state and streams ``x`` [N, T, in] in order,
    ``batch`` sequences at a time, without resets in between.
    """
    engine = make_engine(inference_network(net), backend, dtype=dtype)
    logits, losses = [], []
    for i in tqdm(range(0, len(x), batch), desc=f"eval {backend}", disable=not progress,
                  leave=False):
        idx = np.arange(i, min(i + batch, len(x)))
        n = len(idx)
        idx = np.resize(idx, batch)  # a short last batch repeats its sequences
        lg, ce = stream_batch(engine, x[idx], labels[idx], readout_start, teach=False)
        logits.append(lg[:n])
        losses.append(ce[:n])
    return np.concatenate(logits), float(np.concatenate(losses).mean())


@dataclass
class TrainResult:
    """What :func:`train_classifier` returns."""

    network: Network          # trained parameters, learning off
    history: dict[str, list]  # per epoch: train_loss, train_acc, test_loss, test_acc, lr, time_s
    wall_time_s: float        # training and per-epoch evaluation
    steps: int                # simulation steps done (training + evaluation)


def train_classifier(name: str, net: Network, data: Dataset, cfg: TrainConfig,
                     out_dir: str | Path, run_config: dict[str, Any], backend: str = "numpy",
                     seed: int = 0, quiet: bool = False, guard=None, fresh: bool = False,
                     checkpoint_every_s: float = 60.0) -> TrainResult:
    """Train ``net`` on ``data`` with Adam on the local signals; checkpoint and resume.

    ``run_config`` (JSON-ready) identifies the run in the checkpoint. ``guard`` is an
    object with a boolean ``requested`` (default: Ctrl-C); when it turns true the run
    checkpoints at the next batch boundary and raises :class:`ExperimentInterrupted`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, quiet)
    dtype = np.dtype(cfg.dtype).type
    engine = make_engine(net, backend, optimizer=Adam(cfg.lr), dtype=dtype)
    sched = ReduceLROnPlateau(cfg.plateau_patience, cfg.plateau_factor)
    ckpt = Checkpoint(out, run_config, may_change=("epochs",))
    if fresh:
        ckpt.discard()
    keys = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "time_s")
    history: dict[str, list] = {k: [] for k in keys}
    n_train, T = len(data.x_train), data.steps_per_sample
    n_batches = -(-n_train // cfg.batch)
    epoch, batch_i, steps, elapsed = 0, 0, 0, 0.0
    acc = {"loss": 0.0, "correct": 0, "seen": 0}
    saved = ckpt.load()
    if saved is not None:
        arrays, progress = saved
        restore_engine(engine, arrays, "train.")
        history = {k: arrays[f"history.{k}"].tolist() for k in keys}
        epoch, batch_i, steps = progress["epoch"], progress["batch"], progress["steps"]
        elapsed, acc = progress["elapsed_s"], progress["epoch_acc"]
        sched.best, sched.bad_epochs = progress["plateau_best"], progress["plateau_bad"]
        log(f"{name}: resuming at epoch {epoch + 1}, batch {batch_i} of {n_batches}")
    else:
        log(f"{name}: {n_train} training / {len(data.x_test)} test sequences of {T} steps, "
            f"{cfg.epochs} epochs, batch {cfg.batch}, backend {backend}, seed {seed}")

    def save() -> None:
        arrays = engine_arrays(engine, "train.")
        arrays.update({f"history.{k}": np.asarray(v, dtype=np.float64)
                       for k, v in history.items()})
        ckpt.save(arrays, {"epoch": epoch, "batch": batch_i, "steps": steps,
                           "elapsed_s": elapsed, "epoch_acc": acc,
                           "plateau_best": float(sched.best),
                           "plateau_bad": sched.bad_epochs})

    guard_ctx = InterruptGuard() if guard is None else None
    guard = guard_ctx if guard is None else guard
    start = last_save = time.perf_counter()
    bar = tqdm(total=cfg.epochs * n_batches, initial=epoch * n_batches + batch_i, desc=name,
               unit="batch", disable=quiet, mininterval=0.5)
    try:
        if guard_ctx is not None:
            guard_ctx.__enter__()
        while epoch < cfg.epochs:
            order = epoch_order(data.y_train, seed, epoch, cfg.balanced_batches)
            engine.learning = True
            while batch_i < n_batches:
                idx = order[batch_i * cfg.batch:(batch_i + 1) * cfg.batch]
                if len(idx) != cfg.batch:  # keep the engine's batch axis fixed
                    idx = np.concatenate([idx, order[:cfg.batch - len(idx)]])
                lg, ce = stream_batch(engine, data.x_train[idx], data.y_train[idx],
                                      cfg.readout_start, teach=True,
                                      teach_start=cfg.teach_start)
                acc["loss"] += float(ce.sum())
                acc["correct"] += int(np.sum(np.argmax(lg, -1) == data.y_train[idx]))
                acc["seen"] += len(idx)
                steps += T
                batch_i += 1
                bar.update(1)
                now = time.perf_counter()
                if guard.requested or now - last_save > checkpoint_every_s:
                    elapsed += now - start
                    start = last_save = now
                    save()
                    if guard.requested:
                        log(f"{name}: interrupted in epoch {epoch + 1} after batch {batch_i}; "
                            f"checkpoint saved, rerun the same command to resume")
                        raise ExperimentInterrupted(
                            f"interrupted in epoch {epoch + 1}; checkpoint {ckpt.path} saved: "
                            f"rerun the same command to resume")
            test_logits, test_loss = predict(
                frozen_network(net, engine), data.x_test, data.y_test, backend, cfg.batch,
                cfg.readout_start, dtype)
            steps += T * -(-len(data.x_test) // cfg.batch)
            test_acc = float(np.mean(np.argmax(test_logits, -1) == data.y_test))
            now = time.perf_counter()
            epoch_time = elapsed + (now - start) - sum(history["time_s"])
            history["train_loss"].append(acc["loss"] / acc["seen"])
            history["train_acc"].append(acc["correct"] / acc["seen"])
            history["test_loss"].append(test_loss)
            history["test_acc"].append(test_acc)
            history["lr"].append(engine.optimizer.lr)
            history["time_s"].append(epoch_time)
            log(f"{name} epoch {epoch + 1}/{cfg.epochs}: "
                f"train loss {history['train_loss'][-1]:.4f} "
                f"acc {history['train_acc'][-1]:.4f}, test loss {test_loss:.4f} "
                f"acc {test_acc:.4f}, lr {engine.optimizer.lr:.3g}, {epoch_time:.1f} s")
            engine.optimizer.lr = sched.step(test_loss, engine.optimizer.lr)
            epoch, batch_i = epoch + 1, 0
            acc = {"loss": 0.0, "correct": 0, "seen": 0}
            elapsed += now - start
            start = last_save = now
            save()
    finally:
        bar.close()
        if guard_ctx is not None:
            guard_ctx.__exit__(None, None, None)
    return TrainResult(frozen_network(net, engine), history, elapsed, steps)


def run_classification(name: str, title: str, net: Network, data: Dataset, cfg: TrainConfig,
                       config, out_dir: str | Path, backend: str, quiet: bool, guard,
                       fresh: bool, extras: Callable[[TrainResult], dict] | None = None
                       ) -> tuple[dict[str, Any], TrainResult, RunLog]:
    """Train a streamed classifier and write its results: the part every classification
    experiment shares.

    ``config`` is the experiment's config dataclass (with ``seed`` and
    ``lava_sequences``); ``extras(result)`` adds experiment-specific metrics. Writes
    ``metrics.json`` (once before and once after the other backends' evaluation, which
    may take long) and ``<name>.png``; returns ``(metrics, result, log)``. Holds
    ``out_dir/run.lock`` (:func:`run_lock`) while it trains and writes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        result = train_classifier(name, net, data, cfg, out,
                                  {"experiment": name, "backend": backend, **asdict(config)},
                                  backend, config.seed, quiet, guard, fresh)
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
        if extras is not None:
            metrics.update(extras(result))
        write_metrics(out, metrics)
        metrics.update(other_backend_metrics(result.network, data, cfg, backend,
                                             config.lava_sequences, log))
        write_metrics(out, metrics)
        plot_history(h, out / f"{name}.png", title)
        return metrics, result, log


def other_backend_metrics(net: Network, data: Dataset, cfg: TrainConfig, trained_on: str,
                          n_lava: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Test accuracy in fixed point and the Lava/engine agreement, where those backends exist.

    The fixed-point formats are calibrated (:func:`lava_gle.calibration.calibrate`) on
    the first ``cfg.batch`` training sequences, as a deployment would do; the options it
    chose are ``fixed_point_calibration``.
    ``test_accuracy_fixed``: the trained network on the whole test set with
    ``numpy-fixed`` (same streaming as the float test accuracy).
    ``lava_agreement``: the first ``n_lava`` test sequences, each from the zero state
    (Lava has no batch axis and resets between sequences; the engine twin runs them
    as independent batch elements, which is the same thing), through
    :func:`lava_gle.backends.simulate`; the fraction where ``lava-float`` (and
    ``lava-fixed``) predict the class of their twin (``numpy`` resp. ``numpy-fixed``).
    A backend that is missing or fails with a LavaGleError gives ``None``, a log line
    and an entry in ``not_measured``.
    """
    out: dict[str, Any] = {"test_accuracy_fixed": None, "lava_agreement": None,
                           "lava_agreement_by_backend": {}, "not_measured": {}}
    net = calibrate(net, data.x_train[:cfg.batch].transpose(1, 0, 2))
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

    def fixed_accuracy() -> float:
        with warnings.catch_warnings(record=True) as caught:  # one saturation note per batch
            warnings.simplefilter("always")
            logits, _ = predict(net, data.x_test, data.y_test, "numpy-fixed", cfg.batch,
                                cfg.readout_start)
        if caught:  # the counts are cumulative: the last note has the totals
            out["fixed_point_warning"] = str(caught[-1].message)
            log(f"numpy-fixed: {caught[-1].message}")
        return float(np.mean(np.argmax(logits, -1) == data.y_test))

    if trained_on != "numpy-fixed":
        out["test_accuracy_fixed"] = attempt("test_accuracy_fixed", "numpy-fixed",
                                             fixed_accuracy)
    x = np.ascontiguousarray(data.x_test[:n_lava].transpose(1, 0, 2))  # [T, n, in]
    eval_net = inference_network(net)

    def logits(backend: str) -> np.ndarray:
        out = simulate(eval_net, x, backend=backend, record=["output"])["output"]
        return out[cfg.readout_start:].sum(axis=0)

    agreements = []
    for lava, twin in (("lava-float", "numpy"), ("lava-fixed", "numpy-fixed")):
        if n_lava < 1:
            out["not_measured"][f"lava_agreement[{lava}]"] = "no test sequences asked for Lava"
            continue

        def agreement(lava=lava, twin=twin) -> np.ndarray:
            return np.argmax(logits(twin), -1) == np.argmax(logits(lava), -1)
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
