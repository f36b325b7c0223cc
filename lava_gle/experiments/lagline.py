"""LagLine (paper Fig. 5): a student chain of two lagging neurons learns its teacher.

Network: input (1) -> layer ``l0`` (1 softplus neuron) -> layer ``l1`` (1 softplus
neuron), no bias. The teacher (weights 1.0 and 2.0, tau_m 1.0 and 2.0, tau_r 0.1)
turns a smoothed random step input into the target; a student with random weights
(and, with ``learn_tau``, random tau_m) learns from the output error alone, with
Adam on its local signals. Two students run side by side on the same input: GLE
(prospective errors) and the instantaneous-error variant, whose failure is the
point of the figure.

Public functions (also used by ``lava-gle demo``):

- :class:`LaglineConfig` (the paper's set-up; :meth:`LaglineConfig.quick`),
- :class:`SmoothedSteps` / :func:`make_inputs` (the input stream),
- :func:`teacher_network`, :func:`student_network`,
- :func:`run_lagline` (train, checkpoint, write metrics and figure) and
  :func:`summarise` (a short text report of a metrics dict),
- :func:`simulate_lagline` (teacher and both students in one run of any
  :func:`lava_gle.backends.simulate` backend, e.g. ``lava-float`` with batch 1).

Time is in the unit of ``dt`` (the paper's time units); steps = time / dt.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lava_gle.backends import make_engine
from lava_gle.description import network_from_dict
from lava_gle.errors import LavaGleError
from lava_gle.experiments.checkpoint import Checkpoint, ResumableRun, run_lock, run_record
from lava_gle.experiments.metrics import RunLog
from lava_gle.network import Network
from lava_gle.numerics.optim import Adam
from lava_gle.results import pyplot, save_figure, write_metrics

#: The two students of the comparison: name -> prospective_errors.
VARIANTS = {"gle": True, "instantaneous": False}


@dataclass(frozen=True)
class LaglineConfig:
    """Set-up of the LagLine experiment (defaults: the paper's).

    Attributes
    ----------
    seed : int
        Seeds the input stream and the student's initial weights and tau_m.
    batch : int
        Independent input streams trained in parallel (shared W, tau_m).
    dt : float
        Euler step (time units).
    settle_time, train_time : float
        Time without learning, then time with learning (time units).
    w_teacher, tau_m_teacher : (float, float)
        Teacher weights and membrane time constants, input side first.
    tau_r : float
        Prospective time constant of teacher and student.
    gamma, beta : float
        Error feedback into the student's membranes; MSE nudging strength.
    optimizer : str
        ``adam`` (the paper's: Adam with rate ``lr`` on the local signals) or ``sgd``
        (GLE's own rule ``W += eta * e r^T``, the only one the fixed-point and Lava
        backends run).
    lr : float
        Adam learning rate of weights and (with ``learn_tau``) tau_m.
    sgd_eta, sgd_eta_tau : float or None
        Learning rates of the ``sgd`` rule for the weights and tau_m; None gives the
        defaults of :meth:`sgd_rates`.
    learn_tau : bool
        Whether the student learns tau_m (starting from random values in [0, 1),
        clamped to >= 10 dt) or keeps the teacher's.
    levels, hold_steps, sigma_steps :
        Input: levels uniform in ``levels`` held for a uniform integer number of
        steps in ``hold_steps``, smoothed by a Gaussian of ``sigma_steps`` steps.
    chunk_steps : int
        Steps per chunk: one point of the loss curve, one safe point for Ctrl-C.
    fixed_rate_bits : int
        Fixed-point rate format of the student's layers (``fixed_point.rate_bits``;
        6 gives rates up to 4, the teacher's range, see ``docs/fixed-point.md``); the
        float backends ignore it.
    """

    seed: int = 0
    batch: int = 100
    dt: float = 0.01
    settle_time: float = 50.0
    train_time: float = 4000.0
    w_teacher: tuple[float, float] = (1.0, 2.0)
    tau_m_teacher: tuple[float, float] = (1.0, 2.0)
    tau_r: float = 0.1
    gamma: float = 1.0
    beta: float = 0.01
    optimizer: str = "adam"
    lr: float = 1e-4
    sgd_eta: float | None = None
    sgd_eta_tau: float | None = None
    learn_tau: bool = False
    levels: tuple[float, float] = (-1.5, 1.5)
    hold_steps: tuple[int, int] = (100, 300)
    sigma_steps: float = 5.0
    chunk_steps: int = 1000
    fixed_rate_bits: int = 6

    @classmethod
    def quick(cls, **overrides) -> "LaglineConfig":
        """A run of a few seconds that still shows learning (not the paper's numbers)."""
        base = dict(settle_time=5.0, train_time=200.0, lr=1e-3, batch=20, chunk_steps=500)
        base.update(overrides)
        return cls(**base)

    def sgd_rates(self) -> tuple[float, float]:
        """``(eta, eta_tau)`` of the ``sgd`` rule: 1.0 and 1.0, but weights at 0.1 when tau_m
        learns too. Weights that learn as fast as the taus keep moving near the optimum
        in fixed point (driven by the first layer's 8-bit rates), and each move reads as a
        lag to the tau_m rule: the students drifted to tau_m = (4.2, 0.33) at
        eta 1 and reach (1.005, 2.004) at eta 0.1 (``docs/experiments.md``)."""
        eta = self.sgd_eta if self.sgd_eta is not None else (0.1 if self.learn_tau else 1.0)
        return eta, 1.0 if self.sgd_eta_tau is None else self.sgd_eta_tau

    @property
    def settle_steps(self) -> int:
        return int(round(self.settle_time / self.dt))

    @property
    def total_steps(self) -> int:
        return self.settle_steps + int(round(self.train_time / self.dt))


class SmoothedSteps:
    """A seekable batch of smoothed random step signals, shape [T, batch, 1].

    Every stream holds levels drawn uniformly from ``levels`` for a random number
    of steps in ``hold_steps`` (inclusive), then the whole signal is smoothed by a
    Gaussian of ``sigma_steps`` steps (truncated at 4 sigma; before step 0 and
    after the end the signal holds its first/last level). :meth:`window` returns
    any range of steps exactly as a smoothing of the whole signal would, so a run
    can be cut into chunks and resumed.
    """

    def __init__(self, seed: int, batch: int, total_steps: int,
                 levels: tuple[float, float] = (-1.5, 1.5),
                 hold_steps: tuple[int, int] = (100, 300), sigma_steps: float = 5.0):
        rng = np.random.default_rng([seed, 1])
        n_levels = total_steps // hold_steps[0] + 2
        durations = rng.integers(hold_steps[0], hold_steps[1] + 1, size=(batch, n_levels))
        self.starts = np.cumsum(durations, axis=1) - durations
        self.values = rng.uniform(levels[0], levels[1], size=(batch, n_levels))
        self.total_steps = total_steps
        self.sigma = sigma_steps
        self.radius = int(4.0 * sigma_steps + 0.5)

    def _raw(self, t0: int, t1: int) -> np.ndarray:
        t = np.clip(np.arange(t0, t1), 0, self.total_steps - 1)
        idx = np.stack([np.searchsorted(s, t, side="right") - 1 for s in self.starts], axis=1)
        return np.take_along_axis(self.values.T, idx, axis=0)  # [T, batch]

    def window(self, t0: int, t1: int) -> np.ndarray:
        """Input of steps ``t0 .. t1-1``, shape [t1 - t0, batch, 1]."""
        r = self.radius
        raw = self._raw(t0 - r, t1 + r)
        smooth = gaussian_filter1d(raw, self.sigma, axis=0, mode="nearest", truncate=4.0)
        return smooth[r:r + t1 - t0, :, None]


def make_inputs(config: LaglineConfig, steps: int | None = None) -> np.ndarray:
    """The first ``steps`` (default: all) input steps of ``config``, [steps, batch, 1]."""
    stream = SmoothedSteps(config.seed, config.batch, config.total_steps, config.levels,
                           config.hold_steps, config.sigma_steps)
    return stream.window(0, config.total_steps if steps is None else steps)


def _chain(name: str, config: LaglineConfig, weights, tau_m, learning: dict) -> Network:
    layers = [{"name": f"l{i}", "size": 1, "tau_m": float(tau_m[i]), "tau_r": config.tau_r,
               "phi": "softplus", "bias": False, "weights": [[float(weights[i])]],
               "fixed_point": {"rate_bits": config.fixed_rate_bits}}
              for i in range(2)]
    return network_from_dict({"gle_network": 1, "name": name, "dt": config.dt,
                              "input": {"size": 1}, "layers": layers, "learning": learning})


def teacher_network(config: LaglineConfig) -> Network:
    """The teacher chain (learning off); its output is the student's target."""
    return _chain("lagline_teacher", config, config.w_teacher, config.tau_m_teacher,
                  {"enabled": False})


def student_initial(config: LaglineConfig) -> tuple[np.ndarray, np.ndarray]:
    """Initial student weights (uniform in [0, 1)) and tau_m, input side first.

    tau_m is the teacher's, or with ``learn_tau`` uniform in [0, 1) raised to the
    clamp 10 dt. Both variants of the comparison start from these values.
    """
    rng = np.random.default_rng([config.seed, 2])
    w = rng.uniform(0.0, 1.0, size=2)
    tau = rng.uniform(0.0, 1.0, size=2)
    if config.learn_tau:
        tau = np.maximum(tau, 10.0 * config.dt)
    else:
        tau = np.asarray(config.tau_m_teacher, dtype=np.float64)
    return w, tau


def student_network(config: LaglineConfig, prospective_errors: bool = True) -> Network:
    """The student chain: GLE (``prospective_errors``) or the instantaneous variant.

    Learning is on; ``eta`` and ``eta_tau`` are ``config.sgd_rates()`` with the ``sgd``
    optimiser and ``config.lr`` with ``adam`` (then they document the rate only: the
    experiment hands an Adam to the engine).
    """
    w, tau = student_initial(config)
    eta, eta_tau = (config.lr, config.lr) if config.optimizer == "adam" else config.sgd_rates()
    learning = {"enabled": True, "eta": eta, "gamma": config.gamma, "beta": config.beta,
                "loss": "mse", "prospective_errors": prospective_errors,
                "learn_tau": config.learn_tau, "eta_tau": eta_tau if config.learn_tau else 0.0}
    name = "lagline_" + ("gle" if prospective_errors else "instantaneous")
    return _chain(name, config, w, tau, learning)


def simulate_lagline(config: LaglineConfig, backend: str = "numpy", steps: int | None = None,
                     record=("output",)) -> dict[str, dict[str, np.ndarray]]:
    """Teacher and students on the first ``steps`` input steps, each in one run of
    :func:`lava_gle.backends.simulate` (no chunks, no checkpoint, plain SGD rule).

    The input is ``make_inputs(config, steps)`` [T, batch, 1] and the target the teacher's
    output (float engine). Lava backends have no batch axis while learning: use
    ``config.batch == 1`` for them. Settling (``config.settle_time``) is not applied:
    learning runs from step 0.

    Returns ``{"input": {"x": x}, "teacher": {"output": y}, "gle": traces,
    "instantaneous": traces}`` (traces in the golden key layout, with final ``W.l0`` ...).
    """
    from lava_gle.backends import simulate

    config = replace(config, optimizer="sgd")
    x = make_inputs(config, steps)
    target = simulate(teacher_network(config), x, record=["output"])["output"]
    out: dict[str, dict[str, np.ndarray]] = {"input": {"x": x}, "teacher": {"output": target}}
    for name, prosp in VARIANTS.items():
        out[name] = simulate(student_network(config, prosp), x, target, backend=backend,
                             record=list(record))
    return out


def _scalars(engine) -> tuple[list[float], list[float]]:
    return ([float(w.ravel()[0]) for w in engine.weights],
            [float(t.ravel()[0]) for t in engine.tau_m])


def run_lagline(config: LaglineConfig, out_dir: str | Path, backend: str = "numpy",
                quiet: bool = False, guard=None, fresh: bool = False,
                checkpoint_every_s: float = 30.0) -> dict[str, Any]:
    """Train both students against the teacher; write metrics, figure and log to ``out_dir``.

    The teacher always runs on the float NumPy engine (it only makes data); the
    students run on ``backend``. Resumes from ``out_dir/checkpoint.npz`` when it
    holds a run of the same configuration (``fresh`` discards it); holds
    ``out_dir/run.lock`` (:func:`run_lock`) while it runs. ``guard`` is an
    object with a boolean ``requested`` (default: an :class:`InterruptGuard` on Ctrl-C);
    when it turns true the run checkpoints and raises :class:`ExperimentInterrupted`.

    Returns the metrics dict (also written to ``out_dir/metrics.json``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        log = RunLog(out, quiet)
        stream = SmoothedSteps(config.seed, config.batch, config.total_steps, config.levels,
                               config.hold_steps, config.sigma_steps)
        teacher = make_engine(teacher_network(config), "numpy")
        if config.optimizer not in ("adam", "sgd"):
            raise LavaGleError(f"optimizer must be 'adam' or 'sgd', got {config.optimizer!r}")

        def optimizer():
            return Adam(config.lr, lr_tau=config.lr) if config.optimizer == "adam" else None
        students = {name: make_engine(student_network(config, prosp), backend, optimizer())
                    for name, prosp in VARIANTS.items()}
        w0, tau0 = student_initial(config)
        ckpt = Checkpoint(out, run_record("lagline", backend, config))
        history: dict[str, list] = {"t": []}
        for name in VARIANTS:
            history.update({f"loss.{name}": [], f"w.{name}": [], f"tau_m.{name}": []})
        snapshot = np.zeros((0, 3))
        t_done = 0

        def state():
            return {"snapshot": snapshot}, {"t_done": t_done}

        engines = {"teacher.": teacher, **{f"{name}.": eng for name, eng in students.items()}}
        with ResumableRun(ckpt, engines, history, state, log, guard, fresh,
                          checkpoint_every_s) as run:
            saved = run.resume()
            if saved is not None:
                arrays, progress = saved
                snapshot, t_done = arrays["snapshot"], progress["t_done"]
                log(f"lagline: resuming at step {t_done} of {config.total_steps}")
            else:
                log(f"lagline: {config.total_steps} steps ({config.settle_time:g} settling "
                    f"+ {config.train_time:g} training time units), batch {config.batch}, "
                    f"backend {backend}, learn_tau={config.learn_tau}, seed {config.seed}")
            bar = run.progress_bar(config.total_steps, t_done, "lagline", "step", quiet)
            while t_done < config.total_steps:
                t1 = min(t_done + config.chunk_steps, config.total_steps)
                if t_done < config.settle_steps:
                    t1 = min(t1, config.settle_steps)
                learning = t_done >= config.settle_steps
                x = stream.window(t_done, t1)
                target = teacher.run(x, record=["output"])["output"]
                history["t"].append(t1 * config.dt)
                outs = [target[:, 0, 0]]
                for name, eng in students.items():
                    eng.learning = learning
                    y = eng.run(x, target, record=["output"])["output"]
                    history[f"loss.{name}"].append(float(np.mean((y - target) ** 2)))
                    w, tau = _scalars(eng)
                    history[f"w.{name}"].append(w)
                    history[f"tau_m.{name}"].append(tau)
                    outs.append(y[:, 0, 0])
                snapshot = np.stack(outs, axis=1)
                bar.update(t1 - t_done)
                t_done = t1
                run.tick(f"step {t_done} of {config.total_steps}")
            run.finish()
        elapsed = run.elapsed

        metrics = _metrics(config, backend, students, history, w0, tau0, elapsed)
        saturation = {name: {k: v for k, v in eng.saturation.items() if v}
                      for name, eng in students.items() if hasattr(eng, "saturation")}
        if saturation:
            metrics["saturation"] = saturation
            log(f"fixed-point saturation (values clipped): {saturation}")
        write_metrics(out, metrics)
        plot_lagline(config, history, snapshot, out / "lagline.png")
        log(summarise(metrics))
        return metrics


def _metrics(config: LaglineConfig, backend: str, students: dict, history: dict,
             w0: np.ndarray, tau0: np.ndarray, elapsed: float) -> dict[str, Any]:
    w_t = list(config.w_teacher)
    tau_t = list(config.tau_m_teacher)
    variants = {}
    for name, eng in students.items():
        w, tau = _scalars(eng)
        variants[name] = {
            "w_learned": w, "tau_m_learned": tau,
            "final_loss": history[f"loss.{name}"][-1],
            "w_rel_error": [abs(a - b) / abs(b) for a, b in zip(w, w_t)],
            "tau_m_rel_error": [abs(a - b) / abs(b) for a, b in zip(tau, tau_t)],
        }
        drift = {k.name: {**k.transpose_drift(), "final_lsb": int(np.abs(k.B - k.W).max())}
                 for k in eng.kernels.layers if getattr(k, "B", None) is not None}
        if drift:  # chip timing: how far the backward arrays strayed from W^T
            variants[name]["transpose_drift"] = drift
    gle = variants["gle"]
    steps = config.total_steps
    return {
        "experiment": "lagline", "backend": backend, "seed": config.seed,
        "learn_tau": config.learn_tau, "config": asdict(config),
        "w_teacher": w_t, "tau_m_teacher": tau_t,
        "w_initial": w0.tolist(), "tau_m_initial": tau0.tolist(),
        "w_learned": gle["w_learned"], "tau_m_learned": gle["tau_m_learned"],
        "final_loss": gle["final_loss"], "variants": variants,
        "steps": steps, "wall_time_s": elapsed,
        # three engines advance per step: the teacher and the two students
        "steps_per_s": steps / elapsed if elapsed > 0 else None,
    }


def summarise(metrics: dict[str, Any]) -> str:
    """A few lines comparing the learned parameters with the teacher's."""
    def fmt(values):
        return "(" + ", ".join(f"{v:.4f}" for v in values) + ")"
    lines = [f"lagline ({metrics['backend']}, learn_tau={metrics['learn_tau']}, "
             f"{metrics['steps']} steps, {metrics['wall_time_s']:.1f} s): "
             f"teacher w {fmt(metrics['w_teacher'])}, tau_m {fmt(metrics['tau_m_teacher'])}"]
    for name, v in metrics["variants"].items():
        lines.append(f"  {name:13s}: w {fmt(v['w_learned'])}, tau_m {fmt(v['tau_m_learned'])}, "
                     f"final MSE {v['final_loss']:.3g}")
    return "\n".join(lines)


def plot_lagline(config: LaglineConfig, history: dict, snapshot: np.ndarray,
                 path: Path) -> None:
    """Figure: loss curves, weights and tau_m over time, and the last chunk's outputs."""
    plt = pyplot()
    if plt is None:  # matplotlib is the optional extra lava-gle[plot]
        return
    fig, ax = plt.subplots(2, 2, figsize=(10, 7))
    t = np.asarray(history["t"])
    colors = {"gle": "tab:blue", "instantaneous": "tab:red"}
    for name in VARIANTS:
        ax[0, 0].semilogy(t, history[f"loss.{name}"], color=colors[name], label=name)
        w = np.asarray(history[f"w.{name}"])
        tau = np.asarray(history[f"tau_m.{name}"])
        for i, style in enumerate(("-", "--")):
            ax[0, 1].plot(t, w[:, i], style, color=colors[name], label=f"{name} w{i}")
            ax[1, 0].plot(t, tau[:, i], style, color=colors[name], label=f"{name} tau_m{i}")
    for i in range(2):
        ax[0, 1].axhline(config.w_teacher[i], color="k", lw=0.8, ls=":")
        ax[1, 0].axhline(config.tau_m_teacher[i], color="k", lw=0.8, ls=":")
    ax[0, 0].set(title="output MSE per chunk", xlabel="time")
    ax[0, 1].set(title="weights (dotted: teacher)", xlabel="time")
    ax[1, 0].set(title="tau_m" + ("" if config.learn_tau else " (not learned)"), xlabel="time")
    ts = np.arange(len(snapshot)) * config.dt
    for j, (label, color) in enumerate([("teacher", "k"), ("gle", colors["gle"]),
                                        ("instantaneous", colors["instantaneous"])]):
        if len(snapshot):
            ax[1, 1].plot(ts, snapshot[:, j], color=color, label=label,
                          lw=2.0 if j == 0 else 1.0)
    ax[1, 1].set(title="output in the last chunk (stream 0)", xlabel="time in chunk")
    for a in ax.ravel():
        a.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def config_from_args(seed: int, quick: bool, learn_tau: bool, optimizer: str | None = None,
                     backend: str = "numpy", sgd_eta: float | None = None,
                     sgd_eta_tau: float | None = None) -> LaglineConfig:
    """The configuration the command line asks for.

    The optimiser defaults to ``adam`` on the float engine and to ``sgd`` on the other
    backends, which learn with GLE's own rule only. ``sgd_eta`` and ``sgd_eta_tau``
    (> 0) set the SGD rule's rates and need that rule.
    """
    config = LaglineConfig.quick() if quick else LaglineConfig()
    if optimizer is None:
        optimizer = "adam" if backend == "numpy" else "sgd"
    for flag, value in (("--sgd-eta", sgd_eta), ("--sgd-eta-tau", sgd_eta_tau)):
        if value is None:
            continue
        if optimizer != "sgd":
            raise LavaGleError(f"{flag} sets a rate of the SGD rule; add --optimizer sgd "
                               "(Adam's rate is fixed by the paper's set-up)")
        if not value > 0:
            raise LavaGleError(f"{flag} must be > 0, got {value}")
    return replace(config, seed=seed, learn_tau=learn_tau, optimizer=optimizer,
                   sgd_eta=sgd_eta, sgd_eta_tau=sgd_eta_tau)
