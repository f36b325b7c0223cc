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

import contextlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

from lava_gle.backends import BACKENDS, make_engine, simulate
from lava_gle.backends import twin as backend_twin
from lava_gle.calibration import calibrate
from lava_gle.description import save_network
from lava_gle.errors import LavaGleError
from lava_gle.experiments.averaging import WeightAverage
from lava_gle.experiments.checkpoint import Checkpoint, ResumableRun, run_lock, run_record
from lava_gle.experiments.metrics import RunLog, accuracy
from lava_gle.experiments.rules import FORMAT_SOURCES, TWIN_IGNORES
from lava_gle.network import Network
from lava_gle.numerics.optim import Adam
from lava_gle.quantize import (
    BiasTraceWarning, QuantizationError, QuantizationWarning, quantize_network,
)
from lava_gle.quantize.formats import weight_exp
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


#: The optimisers of the classification experiments: ``adam`` on the local signals
#: (float only), ``sgd``: GLE's own rule ``W += eta e p^T``, the one a chip's learning
#: engine runs (every backend).
OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """How to train: epochs, batch, optimiser, learning rate and its schedule.

    ``readout_start``: first step of a sample whose output enters the summed logits.
    ``teach_start``: first step of a sample with a target; before it the output
    error is zero (the output still shows the previous sample: one step per layer).
    ``balanced_batches``: spread every class evenly over the epoch, so that each batch
    holds the classes in (about) their overall proportions (default: plain shuffling).
    ``dtype``: float type of the engine (``float32`` or ``float64``).
    ``optimizer``: ``adam`` (rate ``lr``, :class:`ReduceLROnPlateau` on the test loss) or
    ``sgd`` (GLE's own rule at ``eta = lr``; the network's ``learning.eta`` is ignored).
    ``halve_every``: ``sgd`` only, eta halves after every ``halve_every`` epochs (0:
    constant), a schedule fixed in advance, so float and fixed-point runs follow the same
    one; in fixed point each halving is one less in the learning rule's exponent.
    ``target_rate``: loss ``mse`` only, the target rate of the sample's class (the other
    outputs' target is 0): a scaled one-hot target.
    ``eval_batch``: sequences side by side in evaluation (default: ``batch``).
    ``average_window``: test (and end with) the weights and biases averaged over about the
    last ``average_window`` batches (:class:`~lava_gle.experiments.averaging.WeightAverage`,
    kept on the host; 0: the weights as they learned), updated after every
    ``average_every``-th batch.
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
    optimizer: str = "adam"
    halve_every: int = 0
    target_rate: float = 1.0
    eval_batch: int | None = None
    average_window: float = 0.0
    average_every: int = 1

    def eta(self, epoch: int) -> float:
        """The ``sgd`` rule's rate in epoch ``epoch`` (0-based)."""
        return self.lr * 0.5 ** (epoch // self.halve_every) if self.halve_every else self.lr

    @property
    def test_batch(self) -> int:
        return self.batch if self.eval_batch is None else self.eval_batch


def onehot_targets(labels: np.ndarray, classes: int, rate: float) -> np.ndarray:
    """MSE targets [B, classes]: ``rate`` at each sample's class ``labels`` [B], else 0."""
    out = np.zeros((len(labels), classes))
    out[np.arange(len(labels)), labels] = rate
    return out


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
                 teach: bool, teach_start: int = 0,
                 target_rate: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stream one batch ``x`` [B, T, in] through ``engine``.

    With ``teach`` the targets of steps ``teach_start .. T-1`` are ``labels`` [B]
    (class indices for loss ``ce``; with ``target_rate`` the scaled one-hot rates of
    :func:`onehot_targets`, loss ``mse``); the output error drives learning when the
    engine learns. Otherwise, and in the steps before, there is no output error.
    Returns (summed logits [B, C], per-sample step cross-entropy [B]).
    """
    xs = np.ascontiguousarray(x.transpose(1, 0, 2))
    if not teach:
        out = engine.run(xs, None, record=["output"])["output"]
    else:
        y = labels if target_rate is None else onehot_targets(
            labels, engine.net.output_size, target_rate)
        targets = np.broadcast_to(y, (xs.shape[0],) + y.shape)
        parts = []
        if teach_start > 0:
            parts.append(engine.run(xs[:teach_start], None, record=["output"])["output"])
        parts.append(engine.run(xs[teach_start:], targets[teach_start:],
                                record=["output"])["output"])
        out = np.concatenate(parts)
    return out[readout_start:].sum(axis=0), step_cross_entropy(out[readout_start:], labels)


def frozen_network(net: Network, engine) -> Network:
    """``net`` with the engine's current W, b and tau_m, learning off, as a plain GLE network:
    neuron-local gains folded into the weights above them (:attr:`Engine.weights`; without
    learning the normalisers do not adapt). What calibration sizes a fixed-point run's
    formats from; :func:`trained_network` keeps the gains in the neurons instead."""
    trained = net.with_parameters(engine.weights, engine.biases)
    layers = tuple(replace(layer, tau_m=np.array(tau, dtype=np.float64), gain_decay=None,
                           error_norm_decay=None, normaliser_state=None)
                   for layer, tau in zip(trained.layers, engine.tau_m))
    return replace(trained, layers=layers, learning=replace(net.learning, enabled=False))


def trained_network(engine) -> Network:
    """The network ``engine`` has trained, for inference (learning off):
    :attr:`Engine.network` (W as it learned, b, learned tau_m) with its gains kept in the
    neurons (``gain_decay`` and the gains' state); error normalisers, which scale only the
    learning error, are left out (continuing to learn is the checkpoint's job). What a run
    writes as ``network_trained.json`` and evaluates on the other backends: a fixed-point
    run's description quantises back to its trained integers (weight tags aside), and
    unlike :func:`frozen_network` no weight column is scaled by a gain of up to
    ``gain_max``, which an 8-bit weight with one exponent per projection cannot hold."""
    net = engine.network

    def inference(layer):
        state = layer.normaliser_state
        if state is not None:
            state = None if state.gain_ms is None else replace(state, error_ms=None)
        return replace(layer, error_norm_decay=None, normaliser_state=state)
    return replace(net, layers=tuple(inference(layer) for layer in net.layers),
                   learning=replace(net.learning, enabled=False))


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
    return stream_all(engine, x, labels, batch, readout_start, progress)


def stream_all(engine, x: np.ndarray, labels: np.ndarray, batch: int, readout_start: int,
               progress: bool = False) -> tuple[np.ndarray, float]:
    """Summed logits [N, C] and mean step cross-entropy of ``engine`` on ``x`` [N, T, in]
    (no targets), ``batch`` sequences at a time in order, continuing from its state."""
    logits, losses = [], []
    for i in tqdm(range(0, len(x), batch), desc=f"eval {engine.backend}",
                  disable=not progress, leave=False):
        idx = np.arange(i, min(i + batch, len(x)))
        n = len(idx)
        idx = np.resize(idx, batch)  # a short last batch repeats its sequences
        lg, ce = stream_batch(engine, x[idx], labels[idx], readout_start, teach=False)
        logits.append(lg[:n])
        losses.append(ce[:n])
    return np.concatenate(logits), float(np.concatenate(losses).mean())


def predict_in_place(engine, x: np.ndarray, labels: np.ndarray, batch: int,
                     readout_start: int) -> tuple[np.ndarray, float]:
    """:func:`predict` with the engine's own parameters (for fixed point: the trained
    integers and formats, which re-quantising the float values would not reproduce),
    from the zero state, learning off; the engine's state, step count and saturation
    counts are put back afterwards, so training continues as if nothing ran."""
    saved, learning = engine.state_dict(), engine.learning
    engine.learning = False
    try:
        engine.reset(batch)
        with warnings.catch_warnings():  # the saturation counts are put back, too
            warnings.simplefilter("ignore", QuantizationWarning)
            return stream_all(engine, x, labels, batch, readout_start)
    finally:
        engine.load_state_dict(saved)
        engine.learning = learning


def check_schedule(net: Network, cfg: TrainConfig) -> None:
    """Refuse, before training, an eta schedule whose last rate has no learning-engine rule
    (the gain falls below the engine's smallest; halving only lowers it)."""
    last = cfg.eta(cfg.epochs - 1)
    if last == net.learning.eta:
        return
    try:
        quantize_network(replace(net, learning=replace(net.learning, eta=last)))
    except QuantizationError as exc:
        raise LavaGleError(f"--halve-every {cfg.halve_every}: eta {last:g} of epoch "
                           f"{cfg.epochs} has no learning-engine rule ({exc}); halve less "
                           "often, or raise --sgd-eta") from None


#: Run settings a resumed run may change: ``epochs`` (extend a run or end it early),
#: ``halve_every`` (:func:`check_resumed_schedule`: anneal a run that has ended) and
#: ``average_window`` (:func:`check_resumed_average`: average a run's tail over longer).
RESUMABLE_CHANGES = ("epochs", "halve_every", "average_window")


def check_resumed_schedule(ckpt: Checkpoint, cfg: TrainConfig) -> str | None:
    """Refuse to resume the run of ``ckpt`` with a ``--halve-every`` that gives an epoch
    already begun another rate than it had; a schedule that changes only epochs still to
    come continues the run (e.g. 4 epochs at a constant rate resumed with
    ``--halve-every 4 --epochs 8`` runs epochs 5-8 at half the rate). Returns a line for
    the run's log when the schedule changes (the rates of the epochs still to run), else
    None."""
    saved = ckpt.record()
    if saved is None or saved[0].get("halve_every", 0) == cfg.halve_every:
        return None
    recorded, progress = saved
    before = replace(cfg, halve_every=recorded.get("halve_every", 0))
    begun = progress["epoch"] + (progress["batch"] > 0)
    e = next((e + 1 for e in range(begun) if before.eta(e) != cfg.eta(e)), None)
    if e is not None:
        raise LavaGleError(
            f"--halve-every {cfg.halve_every}: the run in {ckpt.path.parent} has begun "
            f"{begun} epochs under --halve-every {before.halve_every}, and epoch {e} ran at "
            f"eta {before.eta(e - 1):g}, where this schedule gives {cfg.eta(e - 1):g}; pick "
            f"a --halve-every that keeps the rates of epochs 1-{begun}, or pass --fresh to "
            "start over")
    spans: list[list] = []  # [first epoch, last epoch, eta], 1-based, epochs still to run
    for e in range(progress["epoch"], cfg.epochs):
        if spans and spans[-1][2] == cfg.eta(e):
            spans[-1][1] = e + 1
        else:
            spans.append([e + 1, e + 1, cfg.eta(e)])
    rates = ", ".join((f"epoch {a}" if a == b else f"epochs {a}-{b}") + f" at eta {eta:g}"
                      for a, b, eta in spans) or "no epoch is left to run"
    return (f"the schedule changes from --halve-every {before.halve_every} to "
            f"{cfg.halve_every}: {rates}")


def check_resumed_average(ckpt: Checkpoint, cfg: TrainConfig) -> str | None:
    """Refuse to resume the run of ``ckpt`` with averaging turned on or off; a resumed run
    may change ``--average-window`` (the average carries on from where it stood, at the
    new rate: tail averaging). Returns a line for the run's log when the window changes,
    else None."""
    recorded = ckpt.recorded_config()
    before = None if recorded is None else recorded.get("average_window") or 0.0
    if before is None or before == cfg.average_window:
        return None
    if not before or not cfg.average_window:
        had = f"with an average of its weights (window {before:g})" if before else \
            "without an average of its weights"
        fix = f"give --average-window ({before:g} keeps it)" if before else \
            "drop --average-window"
        raise LavaGleError(
            f"--average-window: the run in {ckpt.path.parent} was checkpointed {had}; a "
            f"resumed run may change the window but not turn averaging on or off: {fix}, "
            "or pass --fresh to start over")
    return (f"the average's window changes from {before:g} to {cfg.average_window:g} "
            "batches; the average carries on from where it stood")


def evaluate(engine, x: np.ndarray, labels: np.ndarray,
             cfg: TrainConfig) -> tuple[np.ndarray, float]:
    """Summed logits [N, C] and mean step cross-entropy of the network ``engine`` trains,
    learning off, with the engine's own parameters (:func:`predict_in_place`)."""
    return predict_in_place(engine, x, labels, cfg.test_batch, cfg.readout_start)


@dataclass
class TrainResult:
    """What :func:`train_classifier` returns."""

    network: Network          # trained_network: trained parameters, learning off
    history: dict[str, list]  # per epoch: train_loss, train_acc, test_loss, test_acc, lr,
    #                           time_s, and with gains gains_at_cap.<layer>
    wall_time_s: float        # training and per-epoch evaluation
    steps: int                # simulation steps done (training + evaluation)
    engine: Any               # the training engine (its kernels hold the trained parameters)


def train_classifier(name: str, net: Network, data: Dataset, cfg: TrainConfig,
                     out_dir: str | Path, run_config: dict[str, Any], backend: str = "numpy",
                     seed: int = 0, quiet: bool = False, guard=None, fresh: bool = False,
                     checkpoint_every_s: float = 60.0,
                     ignored: tuple[str, ...] = ()) -> TrainResult:
    """Train ``net`` on ``data`` with ``cfg.optimizer``; checkpoint and resume.

    ``adam``: Adam on the local signals (float backends only). ``sgd``: GLE's own rule at
    the rate ``cfg.eta(epoch)`` (``learning.eta`` of ``net`` is replaced), on any stepping
    backend; on ``numpy-fixed`` that is the learning engine's rule in integers, the test
    accuracy is measured with the trained integers (:func:`predict_in_place`). With
    ``cfg.average_window`` the test accuracy is the averaged weights' (the weights as they
    learned: history ``test_acc_unaveraged``), the averages are checkpointed, and the
    engine ends with them.
    ``run_config`` (JSON-ready) identifies the run in the checkpoint, but for
    :data:`RESUMABLE_CHANGES` and the keys ``ignored`` (recorded, not compared). ``guard``
    is an object with a boolean ``requested`` (default: Ctrl-C); when it turns true the run
    checkpoints at the next batch boundary and raises :class:`ExperimentInterrupted`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out, quiet)
    dtype = np.dtype(cfg.dtype).type
    if cfg.optimizer not in OPTIMIZERS:
        raise LavaGleError(f"optimizer must be one of {list(OPTIMIZERS)}, got {cfg.optimizer!r}")
    sgd = cfg.optimizer == "sgd"
    if sgd:
        net = replace(net, learning=replace(net.learning, eta=cfg.eta(0)))
    engine = make_engine(net, backend, optimizer=None if sgd else Adam(cfg.lr), dtype=dtype)
    target_rate = cfg.target_rate if net.learning.loss == "mse" else None
    eta = net.learning.eta
    if sgd and engine.kernels.arithmetic != "float":
        check_schedule(net, cfg)
    sched = ReduceLROnPlateau(cfg.plateau_patience, cfg.plateau_factor)
    keys = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "time_s")
    capped = {k.name: k for k in engine.kernels.layers if k.gains_at_cap() is not None}
    keys += tuple(f"gains_at_cap.{name}" for name in capped)
    average = (WeightAverage(engine, cfg.average_window, cfg.average_every)
               if cfg.average_window else None)
    if average is not None:
        keys += ("test_acc_unaveraged",)
        if cfg.batch > 1 and engine.kernels.arithmetic != "float":
            warnings.warn(f"--average-window at batch {cfg.batch} in fixed point: on MNIST-1D "
                          "at batch 100 it cost the integers 1.8 final test points (four "
                          "seeds, docs/experiments-log.md, 'Session 30'); it helps online "
                          "training (--batch 1)", UserWarning, stacklevel=2)
    history: dict[str, list] = {k: [] for k in keys}
    n_train, T = len(data.x_train), data.steps_per_sample
    if not 0 <= cfg.teach_start < T:
        raise LavaGleError(f"--teach-start {cfg.teach_start}: must be a step of the {T}-step "
                           f"sample (0 .. {T - 1})")
    n_batches = -(-n_train // cfg.batch)
    epoch, batch_i, steps = 0, 0, 0
    acc = {"loss": 0.0, "correct": 0, "seen": 0}

    def state():
        arrays = {} if average is None else average.arrays()
        return arrays, {"epoch": epoch, "batch": batch_i, "steps": steps, "epoch_acc": acc,
                        "plateau_best": float(sched.best), "plateau_bad": sched.bad_epochs}

    ckpt = Checkpoint(out, run_config, may_change=RESUMABLE_CHANGES + ignored)
    notes = [] if fresh else [check_resumed_schedule(ckpt, cfg),
                              check_resumed_average(ckpt, cfg)]
    with ResumableRun(ckpt, {"train.": engine}, history, state, log, guard, fresh,
                      checkpoint_every_s) as run:
        saved = run.resume()
        if saved is not None:
            arrays, progress = saved
            if average is not None:
                average.load(arrays)
            epoch, batch_i, steps = progress["epoch"], progress["batch"], progress["steps"]
            acc = progress["epoch_acc"]
            sched.best, sched.bad_epochs = progress["plateau_best"], progress["plateau_bad"]
            log("; ".join([f"{name}: resuming at epoch {epoch + 1}, batch {batch_i} of "
                           f"{n_batches}"] + [n for n in notes if n]))
        else:
            log(f"{name}: {n_train} training / {len(data.x_test)} test sequences of {T} "
                f"steps, {cfg.epochs} epochs, batch {cfg.batch}, backend {backend}, "
                f"seed {seed}")
        bar = run.progress_bar(cfg.epochs * n_batches, epoch * n_batches + batch_i, name,
                               "batch", quiet)
        while epoch < cfg.epochs:
            order = epoch_order(data.y_train, seed, epoch, cfg.balanced_batches)
            engine.learning = True
            if sgd and cfg.eta(epoch) != eta:
                eta = cfg.eta(epoch)
                engine.kernels.set_eta(eta)
            while batch_i < n_batches:
                idx = order[batch_i * cfg.batch:(batch_i + 1) * cfg.batch]
                if len(idx) != cfg.batch:  # keep the engine's batch axis fixed
                    idx = np.concatenate([idx, order[:cfg.batch - len(idx)]])
                lg, ce = stream_batch(engine, data.x_train[idx], data.y_train[idx],
                                      cfg.readout_start, teach=True,
                                      teach_start=cfg.teach_start, target_rate=target_rate)
                acc["loss"] += float(ce.sum())
                acc["correct"] += int(np.sum(np.argmax(lg, -1) == data.y_train[idx]))
                acc["seen"] += len(idx)
                steps += T
                batch_i += 1
                if average is not None and batch_i % cfg.average_every == 0:
                    average.update(engine)
                bar.update(1)
                run.tick(f"epoch {epoch + 1}, batch {batch_i} of {n_batches}")
            eval_steps = T * -(-len(data.x_test) // cfg.test_batch)
            if average is not None:
                own_logits, _ = evaluate(engine, data.x_test, data.y_test, cfg)
                history["test_acc_unaveraged"].append(accuracy(own_logits, data.y_test))
                steps += eval_steps
            with average.applied(engine) if average else contextlib.nullcontext():
                test_logits, test_loss = evaluate(engine, data.x_test, data.y_test, cfg)
            steps += eval_steps
            test_acc = accuracy(test_logits, data.y_test)
            epoch_time = run.seconds - sum(history["time_s"])
            history["train_loss"].append(acc["loss"] / acc["seen"])
            history["train_acc"].append(acc["correct"] / acc["seen"])
            history["test_loss"].append(test_loss)
            history["test_acc"].append(test_acc)
            lr = eta if sgd else engine.optimizer.lr
            history["lr"].append(lr)
            history["time_s"].append(epoch_time)
            for layer, k in capped.items():
                history[f"gains_at_cap.{layer}"].append(k.gains_at_cap())
            log(f"{name} epoch {epoch + 1}/{cfg.epochs}: "
                f"train loss {history['train_loss'][-1]:.4f} "
                f"acc {history['train_acc'][-1]:.4f}, test loss {test_loss:.4f} "
                f"acc {test_acc:.4f}, {'eta' if sgd else 'lr'} {lr:.3g}, "
                f"{epoch_time:.1f} s" + ("" if average is None else
                                         f", unaveraged acc "
                                         f"{history['test_acc_unaveraged'][-1]:.4f}") + "".join(
                    f", {layer} {k.gains_at_cap()} at the gains' cap"
                    for layer, k in capped.items() if k.gains_at_cap()))
            if not sgd:
                engine.optimizer.lr = sched.step(test_loss, engine.optimizer.lr)
            epoch, batch_i = epoch + 1, 0
            acc = {"loss": 0.0, "correct": 0, "seen": 0}
            run.save()
    elapsed = run.elapsed
    if average is not None:  # the network the run tested is the one it ends with
        average.apply(engine)
    return TrainResult(trained_network(engine), history, elapsed, steps, engine)


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

    Training in fixed point (``numpy-fixed``) first calibrates the formats on the first
    ``cfg.test_batch`` training sequences and their one-hot targets at every step
    (:func:`lava_gle.calibration.calibrate`, error formats included), then
    adds to the metrics: ``saturation`` (values clipped while training, by counter),
    ``test_accuracy_float_same_rule`` (the same training on ``numpy``, in
    ``out_dir/float_same_rule``; its checkpoint does not compare
    :data:`~lava_gle.experiments.rules.TWIN_IGNORES`, so a copy of it serves runs that
    differ in those only), ``lava_fixed_agreement`` (:func:`lava_fixed_agreement`,
    ``config.agreement_steps`` steps) and, for batch > 1, ``batch_semantics``: B copies
    whose updates are summed into one learning-engine epoch per step, which no single
    chip streaming one sample at a time does.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fixed = BACKENDS[backend].arithmetic != "float"
    if config.formats not in FORMAT_SOURCES:
        raise LavaGleError(f"formats must be one of {list(FORMAT_SOURCES)}, "
                           f"got {config.formats!r}")
    with run_lock(out):
        twin = None
        run_config = run_record(name, backend, config)
        if fixed:
            twin = train_classifier(f"{name} float same rule", net, data, cfg,
                                    out / "float_same_rule",
                                    run_record(name, "numpy", config),
                                    "numpy", config.seed, quiet, guard, fresh,
                                    ignored=TWIN_IGNORES)
            x_cal = data.x_train[:cfg.test_batch].transpose(1, 0, 2)
            y_cal = onehot_targets(data.y_train[:cfg.test_batch], net.output_size,
                                   cfg.target_rate)
            y_cal = np.broadcast_to(y_cal, x_cal.shape[:1] + y_cal.shape)
            recorded = None if fresh else resumed_formats(out, run_config)
            if recorded is not None:
                net = with_formats(net, recorded)
            elif config.formats == "float":
                net = formats_from_float(net, frozen_network(net, twin.engine), x_cal,
                                         y_cal, weights=[k.W for k in twin.engine.kernels.layers],
                                         eta=cfg.eta(cfg.epochs - 1))
            elif config.weight_range is not None:
                net = replace(net, fixed_point={**net.fixed_point, "weight_headroom": 1.0,
                                                "weight_range": config.weight_range})
            net = calibrate(net, x_cal, y_cal)
            run_config["fixed_point"] = formats_record(net)
        result = train_classifier(name, net, data, cfg, out, run_config, backend, config.seed,
                                  quiet, guard, fresh)
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
        write_metrics(out, metrics)
        plot_history(h, out / f"{name}.png", title)
        return metrics, result, log


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
    integers start from the one and move towards the other). Options the description
    sets win. On a chip this is the host's choice of formats before deployment; the
    integers then learn from ``net``'s initial parameters.

    ``weights``: the trained weights as the float kernels hold them (default: those of
    ``trained``). With gains (``gain_decay``) ``trained`` has them folded in (``W
    diag(g)``, :func:`frozen_network`) while the integers learn ``W`` itself. A layer with
    an error normaliser takes no calibrated ``error_trace_range``: its trace spans the
    normalised error (``quantize_network``).

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
                quantize_network(replace(net, learning=replace(net.learning, eta=eta)))
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
    """The metrics of a run trained in fixed point (see :func:`run_classification`;
    ``twin``: the float run with the same rule); writes ``out/compare_case`` (the run's
    start) and ``out/compare_case_end`` (the float twin's trained network, its normalisers'
    state included, at the last epoch's rate) with :func:`write_compare_case`. Under chip
    timing ``transpose_drift``: per layer with a backward array, the largest ``|B - W^T|``
    and its RMS over synapses and learning steps of the run, in weight LSBs
    (:meth:`~lava_gle.numerics.kernels.FixedLayer.transpose_drift`)."""
    metrics: dict[str, Any] = {"saturation": dict(result.engine.saturation)}
    backward = {k.name: k.transpose_drift() for k in result.engine.kernels.layers
                if getattr(k, "B", None) is not None}
    if backward:  # chip timing: how far the backward arrays drifted from W^T
        metrics["transpose_drift"] = backward
    if cfg.batch > 1:
        metrics["batch_semantics"] = FIXED_BATCH_NOTE.format(batch=cfg.batch)
    metrics["formats"] = {"source": config.formats,
                          "layers": {l.name: dict(l.fixed_point) for l in net.layers}}
    metrics["compare_case"] = write_compare_case(
        out / "compare_case", start_network(net, cfg), data, cfg, config.seed, backend)
    metrics["compare_case_end"] = write_compare_case(
        out / "compare_case_end", end_network(net, twin.engine.network, cfg), data, cfg,
        config.seed, backend)
    metrics["test_accuracy_float_same_rule"] = twin.history["test_acc"][-1]
    log(f"{net.name}: float run with the same rule: test accuracy "
        f"{metrics['test_accuracy_float_same_rule']:.4f}")
    try:
        metrics["lava_fixed_agreement"] = lava_fixed_agreement(
            net, data, cfg, config.seed, config.agreement_steps)
    except LavaGleError as exc:
        metrics["lava_fixed_agreement"] = None
        metrics.setdefault("not_measured", {})["lava_fixed_agreement"] = str(exc)
        log(f"lava_fixed_agreement not measured: {exc}")
    return metrics


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


def start_network(net: Network, cfg: TrainConfig) -> Network:
    """``net`` learning at the rate of epoch 0 (``sgd``; unchanged for ``adam``)."""
    if cfg.optimizer != "sgd":
        return net
    return replace(net, learning=replace(net.learning, eta=cfg.eta(0)))


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
    return replace(out, learning=replace(net.learning, eta=cfg.eta(cfg.epochs - 1)))


#: The trained network a classification run writes (:func:`trained_network`).
TRAINED_NETWORK = "network_trained.json"
#: Learning steps of the compare case a fixed-point run writes (:func:`write_compare_case`).
COMPARE_CASE_STEPS = 8000


def write_compare_case(out_dir: Path, net: Network, data: Dataset, cfg: TrainConfig,
                       seed: int, backend: str = "numpy-fixed",
                       steps: int = COMPARE_CASE_STEPS) -> dict[str, Any]:
    """Write a fixed-point run's set-up as a case for ``lava-gle compare``.

    ``out_dir/network.json``: ``net`` as it is to learn (formats, each projection's
    ``eta_scale``, parameters and ``learning.eta``: :func:`start_network`,
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
    integers (exact multiples of a power of two) means the integers are. None for
    ``steps`` 0.
    """
    if steps < 1:
        return None
    x, y = online_stream(data, cfg, seed, steps, net.output_size)
    net = start_network(net, cfg)
    start = time.perf_counter()
    with warnings.catch_warnings():  # saturation notes: counted by the training run
        warnings.simplefilter("ignore")
        a = simulate(net, x, y, backend=backend_twin("lava-fixed"), record=["output", "e"])
        b = simulate(net, x, y, backend="lava-fixed", record=["output", "e"])
    keys = sorted(k for k in a.keys() & b.keys() if not k.startswith("sat."))
    differ = [k for k in keys if not np.array_equal(a[k], b[k])]
    return {"steps": steps, "batch": 1, "identical": not differ, "differing": differ,
            "compared": keys, "wall_time_s": time.perf_counter() - start}


#: The fixed-point inference measured after training (:func:`other_backend_metrics`):
#: key suffix of ``test_accuracy_fixed`` and ``fixed_point_warning`` -> backend.
FIXED_INFERENCE = {"": "numpy-fixed", "_chip": "numpy-fixed-chip"}


def other_backend_metrics(net: Network, data: Dataset, cfg: TrainConfig, trained_on: str,
                          n_lava: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Test accuracy in fixed point and the Lava/engine agreement, where those backends exist.

    The fixed-point formats are calibrated (:func:`lava_gle.calibration.calibrate`) on
    the first ``cfg.batch`` training sequences, as a deployment would do; the options it
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
    net = calibrate(net, data.x_train[:cfg.test_batch].transpose(1, 0, 2))
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
