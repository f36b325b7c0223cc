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
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lava_gle.backends import make_engine
from lava_gle.errors import LavaGleError, LavaGleWarning
from lava_gle.experiments.averaging import WeightAverage
from lava_gle.experiments.checkpoint import Checkpoint, ResumableRun
from lava_gle.experiments.metrics import RunLog, accuracy
from lava_gle.network import Network
from lava_gle.numerics.optim import Adam
from lava_gle.quantize import QuantizationError, QuantizationWarning, quantize_network


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
    return replace(trained, layers=layers).with_learning(enabled=False)


def trained_network(engine) -> Network:
    """The network ``engine`` has trained, for inference (learning off):
    :attr:`Engine.network` (W as it learned, b, learned tau_m) with its gains kept in the
    neurons (``gain_decay`` and the gains' state); error normalisers, which scale only the
    learning error, are left out (continuing to learn is the checkpoint's job). What a run
    writes as ``network_trained.json`` and evaluates on the other backends: a fixed-point
    run's description quantises back to its trained integers (weight tags aside), and
    unlike :func:`frozen_network` no weight column is scaled by a gain of up to
    ``gain_max``, which an 8-bit weight with one exponent per projection cannot hold. A
    network trained with loss ``ce`` is written as :func:`inference_network` states it
    (loss ``mse``): learning off and without targets it forms no output error, and so
    every backend, fixed point included (no softmax), runs it."""
    net = engine.network

    def inference(layer):
        state = layer.normaliser_state
        if state is not None:
            state = None if state.gain_ms is None else replace(state, error_ms=None)
        return replace(layer, error_norm_decay=None, normaliser_state=state)
    net = replace(net, layers=tuple(inference(layer) for layer in net.layers))
    return inference_network(net) if net.learning.loss == "ce" else \
        net.with_learning(enabled=False)


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
    return net.with_learning(enabled=False, loss="mse", beta=INFERENCE_BETA)


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


def one_stream_accuracy(engine, data: Dataset, cfg: TrainConfig) -> float:
    """Test accuracy of the network ``engine`` holds with the test sequences streamed one
    after the other in one stream, learning off (:func:`predict_in_place` at batch 1): as a
    chip at batch 1 tests, each sequence starting from the state the one before it left.
    The per-epoch figures stream ``cfg.test_batch`` sequences side by side instead, each
    sequence after the one ``test_batch`` places before it, which moves the accuracy by a
    few tenths of a point either way (``docs/experiments.md``, ``--batch 1``)."""
    logits, _ = predict_in_place(engine, data.x_test, data.y_test, 1, cfg.readout_start)
    return accuracy(logits, data.y_test)


def check_schedule(net: Network, cfg: TrainConfig) -> None:
    """Refuse, before training, an eta schedule whose last rate has no learning-engine rule
    (the gain falls below the engine's smallest; halving only lowers it)."""
    last = cfg.eta(cfg.epochs - 1)
    if last == net.learning.eta:
        return
    try:
        quantize_network(net.with_learning(eta=last))
    except QuantizationError as exc:
        raise LavaGleError(f"--halve-every {cfg.halve_every}: eta {last:g} of epoch "
                           f"{cfg.epochs} has no learning-engine rule ({exc}); halve less "
                           "often, or raise --sgd-eta") from None


#: Run settings a resumed run may change: ``epochs`` (extend a run or end it early),
#: ``halve_every`` (:func:`check_resumed_schedule`: anneal a run that has ended),
#: ``average_window`` (:func:`check_resumed_average`: average a run's tail over longer) and
#: ``epoch_steps`` (:func:`check_resumed_epoch_steps`: learning epochs of another length
#: from a training epoch's start).
RESUMABLE_CHANGES = ("epochs", "halve_every", "average_window", "epoch_steps")


def check_resumed_epochs(ckpt: Checkpoint, cfg: TrainConfig) -> None:
    """Refuse to resume the run of ``ckpt`` with fewer epochs than it has begun (its
    weights hold them all: the results would be reported under settings they did not run
    with), and a run that has ended with a change of the settings that act on epochs still
    to run (:data:`RESUMABLE_CHANGES`): with no epoch left the change would rewrite only the
    record and the results. The same settings resume an ended run without training (its
    results are written again from the checkpoint)."""
    saved = ckpt.record()
    if saved is None:
        return
    recorded, progress = saved
    begun, where = progress["epoch"] + (progress["batch"] > 0), ckpt.path.parent
    if begun > cfg.epochs:
        raise LavaGleError(
            f"--epochs {cfg.epochs}: the run in {where} has begun {begun} epochs and its "
            f"weights hold them; give --epochs {begun} (its results written again) or more "
            "(trained on), or pass --fresh to start over")
    changed = [k for k in RESUMABLE_CHANGES if k != "epochs" and k in recorded
               and k in ckpt.config and recorded[k] != ckpt.config[k]]
    if progress["epoch"] == cfg.epochs and changed:
        def shown(v):
            return "none" if v is None else f"{v:g}" if isinstance(v, (int, float)) else v
        flags = ", ".join(f"--{k.replace('_', '-')} {shown(ckpt.config[k])} (it ran with "
                          f"{shown(recorded[k])})" for k in changed)
        raise LavaGleError(
            f"{flags}: the run in {where} has trained all its {cfg.epochs} epochs, and "
            "these settings act on epochs still to run; resume with the settings it ran "
            f"with, give --epochs {cfg.epochs + 1} or more to train on under the new ones, "
            "or pass --fresh to start over")


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
                      for a, b, eta in spans)  # an ended run: refused, check_resumed_epochs
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


def _recorded_epoch_steps(ckpt: Checkpoint, config: dict[str, Any], steps: int) -> int:
    """The learning epochs' length a run recorded in ``config``: a run whose caller records
    none is taken as unchanged (``steps``); one recorded before the option existed ran
    epochs of one step."""
    return steps if "epoch_steps" not in ckpt.config else config.get("epoch_steps", 1)


def check_resumed_epoch_steps(ckpt: Checkpoint, steps: int) -> tuple[int, str | None]:
    """The learning epochs' length (``learning.epoch_steps``) the run of ``ckpt`` was
    checkpointed with (``steps`` without a checkpoint), and a line for the run's log where
    ``steps`` changes it (else None). A resumed run may change the length from the start of
    a training epoch: its engine is built with the recorded length, restored (a fixed-point
    run's continuation checked under it, :meth:`Checkpoint.restore`), then set to
    ``steps`` (:func:`switch_epoch_steps`). Refuses a checkpoint written inside a training
    epoch (an ended run: :func:`check_resumed_epochs`)."""
    saved = ckpt.record()
    then = steps if saved is None else _recorded_epoch_steps(ckpt, saved[0], steps)
    if then == steps:
        return steps, None
    progress = saved[1]
    epoch = progress["epoch"] + 1
    if progress["batch"] > 0:
        raise LavaGleError(
            f"--epoch-steps {steps}: the run in {ckpt.path.parent} stopped inside epoch "
            f"{epoch} (batch {progress['batch']}), which it began with learning epochs of "
            f"{then} steps; the length changes where a training epoch starts: finish epoch "
            f"{epoch} with --epoch-steps {then} --epochs {epoch}, then resume with "
            f"--epoch-steps {steps}, or pass --fresh to start over")
    return then, f"learning epochs change from {then} to {steps} steps from epoch {epoch} on"


def switch_epoch_steps(engine, steps: int, ckpt: Checkpoint) -> None:
    """Set ``engine``, restored from ``ckpt`` with the length it recorded
    (:func:`check_resumed_epoch_steps`), to learning epochs of ``steps`` steps
    (:meth:`~lava_gle.numerics.engine.Engine.set_epoch_steps`). Refused where a learning
    epoch is open at the training epoch's start (the run's training epochs are no whole
    number of learning epochs): the change would drop its sums."""
    then = engine.net.learning.epoch_steps
    if then == steps:
        return
    try:
        engine.set_epoch_steps(steps)
    except LavaGleError:
        raise LavaGleError(
            f"--epoch-steps {steps}: the run in {ckpt.path.parent} is inside a learning "
            f"epoch of {then} steps where its next training epoch starts (its training "
            "epochs are no whole number of learning epochs), and a change would drop that "
            f"epoch's sums; keep --epoch-steps {then}, or pass --fresh to start over"
        ) from None


#: The settings of a training epoch that make a float twin its integers' rule, each with
#: its flag and how to say its value: the rate (``lr``), the learning epochs' length and the
#: average's window (:func:`schedule_plan`).
SCHEDULE = {"lr": ("--halve-every", "eta {:g}"),
            "epoch_steps": ("--epoch-steps", "learning epochs of {:g} steps"),
            "average_window": ("--average-window", "an average over {:g} batches")}


def schedule_plan(ckpt: Checkpoint, cfg: TrainConfig, steps: int) -> dict[str, list[float]]:
    """Each :data:`SCHEDULE` setting per training epoch of the run of ``ckpt`` resumed
    with ``cfg`` and learning epochs of ``steps`` steps: what the epochs it ran had
    (``history``; the recorded value where a checkpoint of before records none), the one
    it is in the recorded value (a resume changes none inside an epoch; its rate:
    :func:`check_resumed_schedule`), then ``cfg``'s (all ``cfg``'s without a
    checkpoint)."""
    saved = ckpt.history()
    if saved is None:
        saved = ({}, {"epoch": 0, "batch": 0}, {})
    config, progress, history = saved
    done, begun = progress["epoch"], progress["epoch"] + (progress["batch"] > 0)
    then = {"epoch_steps": _recorded_epoch_steps(ckpt, config, steps),
            "average_window": config.get("average_window") or 0.0}
    now = {"epoch_steps": steps, "average_window": cfg.average_window}
    plans = {"lr": [float(k) for k in history.get("history.lr", [])[:done]]
             + [cfg.eta(e) for e in range(done, cfg.epochs)]}
    for key in now:
        ran = history.get(f"history.{key}", np.full(done, np.nan))
        plan = [then[key] if np.isnan(k) else float(k) for k in ran[:done]]
        plans[key] = plan + [then[key]] * (begun - done) + [now[key]] * (cfg.epochs - begun)
    return plans


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
    #                           epoch_steps (the learning epochs' length),
    #                           time_s, and with gains gains_at_cap.<layer>
    wall_time_s: float        # training and per-epoch evaluation
    steps: int                # simulation steps done (training + evaluation)
    engine: Any               # the training engine (its kernels hold the trained parameters)


def scheduled_network(net: Network, cfg: TrainConfig) -> Network:
    """``net`` as :func:`train_classifier` builds its engine: with ``sgd``, learning at the
    schedule's first rate ``cfg.eta(0)`` (the loop sets each epoch's)."""
    if cfg.optimizer != "sgd":
        return net
    return net.with_learning(eta=cfg.eta(0))


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
    net = scheduled_network(net, cfg)
    ckpt = Checkpoint(out, run_config, may_change=RESUMABLE_CHANGES + ignored)
    if not fresh:  # another run's checkpoint is refused as such, before any advice
        ckpt.check()
        check_resumed_epochs(ckpt, cfg)
    steps_then, epochs_note = ((net.learning.epoch_steps, None) if fresh else
                               check_resumed_epoch_steps(ckpt, net.learning.epoch_steps))
    recorded = None if fresh else ckpt.recorded_config()
    window_then = cfg.average_window if recorded is None else \
        recorded.get("average_window", cfg.average_window) or 0.0
    engine = make_engine(net.with_learning(epoch_steps=steps_then), backend,
                         optimizer=None if sgd else Adam(cfg.lr), dtype=dtype)
    target_rate = cfg.target_rate if net.learning.loss == "mse" else None
    eta = net.learning.eta
    if sgd and engine.kernels.arithmetic != "float":
        check_schedule(net, cfg)
    sched = ReduceLROnPlateau(cfg.plateau_patience, cfg.plateau_factor)
    keys = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_steps",
            "average_window", "time_s")
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
                          "training (--batch 1)", LavaGleWarning, stacklevel=2)
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

    notes = [] if fresh else [check_resumed_schedule(ckpt, cfg),
                              check_resumed_average(ckpt, cfg), epochs_note]
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
            # a checkpoint from before the length could change ran every epoch at its own
            history["epoch_steps"][:] = [steps_then if np.isnan(k) else int(k)
                                         for k in history["epoch_steps"]]
            history["average_window"][:] = [
                window_then if np.isnan(k) else float(k) for k in history["average_window"]]
            switch_epoch_steps(engine, net.learning.epoch_steps, ckpt)
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
                new = len(idx)  # the epoch's own samples; the padding repeats its first
                if new != cfg.batch:  # keep the engine's batch axis fixed
                    idx = np.concatenate([idx, order[:cfg.batch - new]])
                lg, ce = stream_batch(engine, data.x_train[idx], data.y_train[idx],
                                      cfg.readout_start, teach=True,
                                      teach_start=cfg.teach_start, target_rate=target_rate)
                acc["loss"] += float(ce[:new].sum())
                acc["correct"] += int(np.sum(np.argmax(lg[:new], -1)
                                             == data.y_train[idx[:new]]))
                acc["seen"] += new
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
            history["epoch_steps"].append(engine.net.learning.epoch_steps)
            history["average_window"].append(cfg.average_window)
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
