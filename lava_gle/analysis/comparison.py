"""Compare two backends' behaviour on the same network and streams.

Errors are normalised by the *reference* signal's range (max - min over the whole
array; its largest magnitude when the range is zero, and 1 when that is zero too), so
that 0.05 reads "5 % of how far the float signal moves". The reference is the first
backend of the pair (the float one, by convention).

:func:`run_pair` runs both backends in chunks (recording the weights after every
chunk, so weight trajectories can be compared for any backend); :func:`compare_runs`
turns the two runs into the ``metrics.json`` content, verdicts included.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from lava_gle.backends import get_backend, lava_network, make_engine
from lava_gle.counts import is_count
from lava_gle.errors import LavaGleError, ShapeError
from lava_gle.memory import require_memory
from lava_gle.network import Network
from lava_gle.numerics.streams import prepare_streams
from lava_gle.quantize import QuantizationWarning
from lava_gle.traces import STATE_VARS

#: Default tolerance of the normalised RMS error above which a variable gets a verdict.
DEFAULT_TOLERANCE = 0.05

#: Activations whose fixed-point form is a table or fit, not exact piecewise-linear.
NONLINEAR_SEGMENT_PHIS = ("sigmoid", "tanh", "softplus")


@dataclass
class Run:
    """One backend's run: per-step traces, weights after each chunk, and extras.

    ``traces``: golden key layout (float units). ``checkpoints``: the step index
    after each chunk, [K]. ``weights``/``biases``: layer name -> [K, ...] arrays.
    ``saturation``: counts of clipped values a fixed-point engine reports in its
    ``saturation`` attribute (``<var>.<layer>`` -> count). ``divergence``: where a float
    run first produced NaN or inf (:meth:`lava_gle.errors.DivergenceError.where`), None
    if it did not.
    """

    backend: str
    traces: dict[str, np.ndarray]
    checkpoints: np.ndarray
    weights: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    backward: dict[str, np.ndarray] = field(default_factory=dict)
    saturation: dict[str, int] = field(default_factory=dict)
    divergence: dict | None = None


def run_backend(net: Network, inputs, targets, backend: str, chunks: int = 20,
                progress: bool = False, allow_nan: bool = False) -> Run:
    """Run ``backend`` over the streams, recording everything and the weights ``chunks``
    times along the run (engines run chunk by chunk; Lava runs report through a
    callback after each chunk).

    A float run that diverges raises :class:`~lava_gle.errors.DivergenceError`, unless
    ``allow_nan``: then the run goes on and :attr:`Run.divergence` says where.
    """
    get_backend(backend)  # an unknown name, said before anything runs
    if not is_count(chunks):
        raise LavaGleError(f"chunks must be a whole number >= 1 (weight snapshots along the "
                           f"run), got {chunks!r}")
    x, y = prepare_streams(net, inputs, targets)
    # the weight snapshots are kept per chunk and stacked at the end
    require_memory(net, backend, steps=x.shape[0], batch=x.shape[1], record=True,
                   extra_weight_copies=2 * min(chunks, x.shape[0]))
    weights = {n: [] for n in net.layer_names}
    biases = {n: [] for n in net.layer_names}
    backward: dict[str, list] = {}
    with warnings.catch_warnings():
        # a fixed-point engine warns about saturation after every chunk; the comparison
        # reports the final counts once, in metrics.json and the report
        warnings.filterwarnings("ignore", message="fixed-point saturation")
        if get_backend(backend).lava:
            traces, checkpoints, saturation, diverged = _run_lava(
                net, x, y, backend, chunks, progress, weights, biases, allow_nan)
        else:
            traces, checkpoints, saturation, diverged = _run_engine(
                net, x, y, backend, chunks, progress, weights, biases, backward, allow_nan)
    if any(saturation.values()):
        warnings.warn(f"{backend}: fixed-point saturation (values clipped): " + ", ".join(
            f"{k}={v}" for k, v in sorted(saturation.items()) if v), QuantizationWarning,
            stacklevel=2)
    return Run(backend, traces, checkpoints, {k: np.stack(v) for k, v in weights.items()},
               {k: np.stack(v) for k, v in biases.items()},
               {k: np.stack(v) for k, v in backward.items()}, saturation,
               None if diverged is None else diverged.where())


def _run_engine(net, x, y, backend, chunks, progress, weights, biases, backward, allow_nan):
    engine = make_engine(net, backend, allow_nan=allow_nan)
    bounds = np.linspace(0, x.shape[0], min(chunks, x.shape[0]) + 1).astype(int)
    parts: list[dict] = []
    with tqdm(total=x.shape[0], desc=backend, unit="step", disable=not progress,
              mininterval=0.5) as bar:
        for a, b in zip(bounds[:-1], bounds[1:]):
            parts.append(engine.run(x[a:b], None if y is None else y[a:b], record=True))
            for n in net.layer_names:
                weights[n].append(parts[-1][f"W.{n}"])
                biases[n].append(parts[-1][f"b.{n}"])
                if f"W_back.{n}" in parts[-1]:
                    backward.setdefault(n, []).append(parts[-1][f"W_back.{n}"])
            bar.update(b - a)
    traces = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]
              if parts[0][k].ndim == 3}
    traces.update({k: v for k, v in parts[-1].items() if v.ndim != 3})
    saturation = {k: int(v) for k, v in getattr(engine, "saturation", {}).items()}
    return traces, bounds[1:], saturation, getattr(engine, "divergence", None)


def _run_lava(net, x, y, backend, chunks, progress, weights, biases, allow_nan):
    T, B = x.shape[:2]
    # Lava has no batch axis: batch elements run one after another, chunks count steps
    chunk = max(-(-B * T // chunks), 1)
    steps: list[int] = []
    with lava_network(net, backend, chunk=chunk, allow_nan=allow_nan) as sim:
        def snapshot(done: int) -> None:
            steps.append(done)
            for n in net.layer_names:
                w, b = sim.get_weights(n)
                weights[n].append(np.array(w))
                biases[n].append(np.array(b))
        traces = sim.run(x, y, record=True, progress=progress, callback=snapshot)
    saturation = {k[len("sat."):]: int(v) for k, v in traces.items() if k.startswith("sat.")}
    return traces, np.array(steps) // B, saturation, sim.divergence


def _scale(ref: np.ndarray) -> float:
    rng = float(np.max(ref) - np.min(ref)) if ref.size else 0.0
    if rng > 0:
        return rng
    peak = float(np.max(np.abs(ref))) if ref.size else 0.0
    return peak if peak > 0 else 1.0


def signal_errors(ref: np.ndarray, cand: np.ndarray, tolerance: float) -> dict:
    """Normalised errors of ``cand`` against ``ref`` (both [T, ...]).

    Returns ``rms_error``, ``max_error`` (normalised by the reference's range),
    ``correlation`` (Pearson over all values; 1.0 when both are constant and equal),
    ``first_exceed_step`` (first t whose max normalised error > tolerance, or None),
    ``scale`` (the normaliser) and ``error_over_time`` ([T] RMS over batch and neurons
    of the normalised error, the per-step counterpart of ``rms_error``).
    """
    ref = np.asarray(ref, np.float64)
    cand = np.asarray(cand, np.float64)
    scale = _scale(ref)
    diff = (cand - ref) / scale
    flat = diff.reshape(diff.shape[0], -1)
    per_step = np.abs(flat).max(axis=1)
    over = np.flatnonzero(per_step > tolerance)
    a, b = ref.ravel(), cand.ravel()
    if np.array_equal(a, b):
        corr = 1.0
    elif np.std(a) > 0 and np.std(b) > 0:
        corr = float(np.corrcoef(a, b)[0, 1])
    else:
        corr = 0.0
    return {"rms_error": float(np.sqrt(np.mean(diff ** 2))),
            "max_error": float(np.max(np.abs(diff))),
            "correlation": corr,
            "first_exceed_step": int(over[0]) if over.size else None,
            "scale": scale,
            "error_over_time": np.sqrt(np.mean(flat ** 2, axis=1))}


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two arrays seen as vectors, in degrees (0 for two zero arrays)."""
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 0.0 if na == nb else 90.0
    c = np.clip(np.vdot(a, b) / (na * nb), -1.0, 1.0)
    return float(np.degrees(np.arccos(c)))


def transpose_drift(traces: dict, layer: str) -> dict | None:
    """``{"max": ..., "rms": ...}``: how far a chip-timing run's backward array of ``layer``
    strayed from ``W^T`` (weight LSBs, over the run; ``drift_max.L``/``drift_rms.L`` of
    :func:`lava_gle.numerics.engine.backward_results`), or None for a run without one."""
    if f"drift_max.{layer}" not in traces:
        return None
    return {"max": float(traces[f"drift_max.{layer}"]),
            "rms": float(traces[f"drift_rms.{layer}"])}


def task_metrics(net: Network, traces: dict, targets) -> dict:
    """Output loss over time (and accuracy for ``ce``) of one run, against ``targets``."""
    if targets is None:
        return {}
    out = traces["output"]
    if net.learning.loss == "mse":
        y = np.asarray(targets, np.float64).reshape(out.shape)
        loss = np.mean((out - y) ** 2, axis=(1, 2))
        n = max(len(loss) // 10, 1)
        return {"loss_first": float(loss[:n].mean()), "loss_final": float(loss[-n:].mean()),
                "loss_curve": loss}
    y = np.asarray(targets).reshape(out.shape[:2])
    z = out - out.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    loss = -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0].mean(axis=1)
    acc = float(np.mean(out.argmax(-1) == y))
    n = max(len(loss) // 10, 1)
    return {"loss_first": float(loss[:n].mean()), "loss_final": float(loss[-n:].mean()),
            "accuracy": acc, "loss_curve": loss}


def compare_runs(net: Network, ref: Run, cand: Run, targets=None,
                 tolerance: float = DEFAULT_TOLERANCE) -> dict:
    """The content of ``metrics.json`` for two runs (arrays for figures under ``_series``).

    A run that diverged (``Run.divergence``) is named in ``divergence`` and in every
    verdict; NumPy's warnings about its NaN and inf are left out (the verdict says it).
    Runs of other lengths or batches, targets that do not fit them (checked as a run
    checks them) and a tolerance that is not a positive number are refused.
    """
    shapes = [run.traces["output"].shape[:2] for run in (ref, cand)]
    if shapes[0] != shapes[1]:
        raise ShapeError(f"the runs differ in [steps, batch]: {ref.backend} {list(shapes[0])}, "
                         f"{cand.backend} {list(shapes[1])}; compare runs over the same "
                         "streams")
    if not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise LavaGleError(f"tolerance must be a positive number (of the reference's "
                           f"range), got {tolerance!r}")
    if targets is not None:  # as the runs took them: [T, out] or [T, B, out], finite
        _, targets = prepare_streams(net, np.zeros((*shapes[0], net.input.size)), targets)
    diverged = any(run.divergence for run in (ref, cand))
    with np.errstate(all="ignore") if diverged else contextlib.nullcontext():
        return _compare(net, ref, cand, targets, tolerance)


def _compare(net: Network, ref: Run, cand: Run, targets, tolerance: float) -> dict:
    layers, series = {}, {"error_over_time": {}, "loss_curve": {}}
    for name in net.layer_names:
        layers[name] = {}
        for var in STATE_VARS:
            key = f"{var}.{name}"
            m = signal_errors(ref.traces[key], cand.traces[key], tolerance)
            series["error_over_time"][key] = m.pop("error_over_time")
            layers[name][var] = m
    out = signal_errors(ref.traces["output"], cand.traces["output"], tolerance)
    series["error_over_time"]["output"] = out.pop("error_over_time")

    projections = {}
    for i, name in enumerate(net.layer_names):
        w0 = net.initial_weights(i)
        wr, wc = ref.weights[name][-1], cand.weights[name][-1]
        moved_r = float(np.max(np.abs(wr - w0)))
        moved_c = float(np.max(np.abs(wc - w0)))
        p = {"weight_diff_max": float(np.max(np.abs(wc - wr))),
             "weight_diff_rms": float(np.sqrt(np.mean((wc - wr) ** 2))),
             "bias_diff_max": float(np.max(np.abs(cand.biases[name][-1]
                                                  - ref.biases[name][-1]))),
             "weight_moved_max": {ref.backend: moved_r, cand.backend: moved_c},
             "weight_angle_deg": angle_deg(wr, wc)}
        for run in (ref, cand):
            if name in run.backward:
                p.setdefault("backward_angle_deg", {})[run.backend] = [
                    angle_deg(w, b) for w, b in zip(run.weights[name], run.backward[name])]
            drift = transpose_drift(run.traces, name)
            if drift is not None:
                p.setdefault("transpose_drift_lsb", {})[run.backend] = drift
        projections[name] = p

    task = {}
    for run in (ref, cand):
        t = task_metrics(net, run.traces, targets)
        if t:
            series["loss_curve"][run.backend] = t.pop("loss_curve")
            task[run.backend] = t

    metrics = {
        "network": net.name, "reference": ref.backend, "candidate": cand.backend,
        "steps": int(ref.traces["output"].shape[0]),
        "batch": int(ref.traces["output"].shape[1]), "tolerance": tolerance,
        "layers": layers, "output": out, "projections": projections, "task": task,
        "saturation": {ref.backend: ref.saturation, cand.backend: cand.saturation},
        "divergence": {ref.backend: ref.divergence, cand.backend: cand.divergence},
    }
    metrics["verdicts"] = verdicts(net, metrics, tolerance)
    metrics["_series"] = series
    metrics["_checkpoints"] = ref.checkpoints
    return metrics


def verdicts(net: Network, metrics: dict, tolerance: float) -> list[dict]:
    """Each variable over tolerance, with its most likely cause.

    Causes, checked in this order:

    - ``float run diverged``: a run produced NaN or inf (``divergence`` names where);
      nothing after that says anything about the arithmetic;
    - ``saturation``: the candidate clipped values on this layer's signal path
      (its state, drive, error or parameters; learning-trace clipping is not counted
      here, it shows in the weights);
    - ``learning-rate underflow``: the candidate's weights moved less than half as far
      as the reference's;
    - ``error read-out amplification``: ``v``/``e`` of a layer with tau_m/tau_r > 2,
      whose prospective read-out ``e = v + tau_m dv/dt`` multiplies the quantisation
      noise of its input (rate and error payloads) by tau_m/tau_r;
    - ``step-size quantisation``: dt/tau below 2^-7, so each step's increment spans few
      least significant bits of the state;
    - ``phi approximation error``: u_prosp or r of a sigmoid/tanh/softplus layer (polynomial
      segments in fixed point);
    - otherwise ``accumulated rounding``.
    """
    out = []
    sat = metrics["saturation"].get(metrics["candidate"], {})
    diverged = [d for d in metrics.get("divergence", {}).values() if d]
    for i, name in enumerate(net.layer_names):
        layer = net.layers[i]
        moved = metrics["projections"][name]["weight_moved_max"]
        sat_here = {k: v for k, v in sat.items()
                    if v and k.partition(".")[2] == name and not k.startswith("trace.")}
        tau_m, tau_r = layer.tau_m_array(), layer.tau_r_array()
        gain = float(np.max(tau_m / tau_r))
        ratio = net.dt / float(max(np.max(tau_m), np.max(tau_r)))
        for var, m in metrics["layers"][name].items():
            if m["rms_error"] <= tolerance:
                continue
            if diverged:
                cause = (f"{diverged[0]['message']}, so the comparison says nothing about "
                         "the arithmetic; lower learning.eta or the scale of the inputs")
            elif sat_here:
                cause = (f"saturation: {sum(sat_here.values())} clipped values "
                         f"({', '.join(f'{k}={v}' for k, v in sorted(sat_here.items()))}); "
                         "widen that format or lower the layer's scale")
            elif net.learning.enabled and moved[metrics["reference"]] > 0 and \
                    moved[metrics["candidate"]] < 0.5 * moved[metrics["reference"]]:
                cause = ("learning-rate underflow: the weights moved "
                         f"{moved[metrics['candidate']]:.3g} against "
                         f"{moved[metrics['reference']]:.3g}; raise the precision of the "
                         "weight update or eta")
            elif var in ("v", "e") and net.learning.prospective_errors and gain > 2:
                cause = (f"error read-out amplification: e = v + tau_m dv/dt multiplies the "
                         "quantisation noise of its input (the error from above, which "
                         "carries the 8-bit rates' noise of the layers below) by "
                         f"tau_m/tau_r = {gain:.3g}; finer formats (fixed_point.rate_bits, "
                         "error_bits) or a smaller tau_m/tau_r reduce it")
            elif ratio < 2.0 ** -7:
                cause = (f"step-size quantisation: dt/tau = {ratio:.2g}, each step moves the "
                         "state by few least significant bits; give the state more fraction "
                         "bits (fixed_point.u_bits) or use a larger dt")
            elif layer.phi in NONLINEAR_SEGMENT_PHIS and var in ("u_prosp", "r"):
                cause = (f"phi approximation error: {layer.phi} is polynomial segments in "
                         "fixed point; finer rates (fixed_point.rate_bits) or a piecewise-"
                         "linear phi reduce it")
            else:
                cause = "accumulated rounding of the state"
            out.append({"layer": name, "variable": var, "rms_error": m["rms_error"],
                        "cause": cause})
    return out
