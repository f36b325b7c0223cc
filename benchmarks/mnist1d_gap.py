"""Where MNIST-1D's integers fall behind their float twin: probes on the first batches
and over whole runs.

Takes a finished (or running) ``lava-gle experiment mnist1d --backend numpy-fixed`` (or
``numpy-fixed-chip``) run directory: its configuration (``metrics.json``), its timing and
the formats its checkpoint recorded; with no effect, ``--train-integers`` and ``--train``
give the run's integers and its float twin bit for bit. The effects that replace the
learning step (``--float-learning``, ``--carry-after``, ``--error-feedback``) are for
exact-timing runs only.
``--learning`` and ``--signals``: both engines start from the run's initial network at
epoch 1's rate and see epoch 1's batches; nothing is written. ``--train`` and
``--train-integers`` train over the run's whole schedule into a directory of their own.

A caution measured on seed 1 (``docs/experiments-log.md``, "Session 18"): two float runs that
differ only by their start (the float one and the integers' rounded one) are 1.5-2
training points apart in epochs 2-7 and within 0.4 after 20 epochs, so a difference of
2 points between two runs in the first epochs is no evidence of an effect.

    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --learning [--batches 10]
        training accuracy (nudged outputs, as the run's log) of float and integers when
        only some projections learn: the output alone, then one more hidden layer each
        time, then all. The others' learning epochs are skipped (an instrumented engine,
        not a model option).
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --updates [--trained] [--batches 3]
        weights frozen (the normalisers adapt), the initial network or the run's trained
        one: per layer, how the engine's error trace (and the same trace unclipped, and
        the error clipped but not rounded) changes the update summed over the batches
        against float's from the same signals, how many errors lie beyond the trace's
        clip, what share of the error mass they hold and where in the sequence it is.
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --engine-noise [--batches 300]
        [--learning-epochs 1,2,4,8]
        the run's trained integers, weights frozen: per projection with a learning rule,
        its learning engine's update over the batches (on a scratch copy, tags carried)
        against the ideal update of the same signals and against the error trace alone
        (exact products): how much of an online update is the engine's own rounding; with
        learning epochs of K steps (powers of two; the kernel's learning.epoch_steps:
        errors summed, payloads averaged, one engine epoch per K steps), how much less
        there is and how far the approximation turns it.
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --gains EPOCHS [--float]
        [--rounding-seed N]
        the run's first EPOCHS epochs in integers (or float), as the run trains them: per
        batch the training accuracy and per layer with gains the largest gain and how many
        neurons have a gain above a tenth of the cap (``gain_max``).
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
    --float-weight-grid   another: the float twin sums (drive and error sent down) with
        its weights and biases rounded to the integers' grid (exponents, 9-bit range); it
        learns on the float values (``--train`` only).
    --float-learning [STEPS]   the reverse: the integers learn as float does from their
        own signals (dequantised normalised errors and payloads, ``W += eta mean(e p^T)``
        in a float copy of each projection, which the integer weights and tags then round
        to), instead of through the learning engine; STEPS (letters of ``ENGINE_STEPS``:
        e, p, g, r, q, c, and the variants E, u and 2) are done as the engine does them,
        e.g. ``eprgqc``: all of them.
    --carry-after all|hidden|out   these integer layers carry their weight tags into W
        right after each learning epoch instead of before the next (not a chip's order).
    --all-only   --learning for all projections only.
    --error-trace-range R   the integers' layers with an error normaliser trace their
        normalised error over R of its RMS (``fixed_point.error_trace_range``; default
        ``quantize.network.NORM_TRACE_RANGE`` 4, twice it under exact products: 8, which
        the doubled trace clips at half, 31 trace LSB; ``--train-integers`` only).
    --error-feedback   the integers' neurons feed their error trace's rounding and clipping
        residual back into the next step's trace (:func:`error_feedback`;
        ``--train-integers`` only).
    --gain-max G   the run's configuration with the gains' cap G (``gain_max``; the
        model's default ``floating.GAIN_MAX``, 1000), in float and integers alike, for
        every mode above.
    --rounding-seed N   the integers' ``fixed_point.seed`` (the learning engines' random
        numbers and the error trace's dither; the experiments leave it 0): the same run
        with other rounding, to measure how far single integer runs scatter
        (``--train-integers`` and ``--gains``).
    --gain-payload-bits B   the integers' summed gained payloads B bits wide (the run's
        ``fixed_point.gain_payload_bits``, else the default 16; 8: the learning payload
        itself, as before 2026-12-02).
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --train OUT [effects above]
        the float twin with those integer effects trained over the run's whole schedule
        (epochs, rate halving, batches) into OUT, as the run trains its twin (checkpoints,
        resume, OUT/log.txt); prints the training and test accuracy per epoch.
    .venv/bin/python benchmarks/mnist1d_gap.py RUN_DIR --train-integers OUT [--float-learning
        [STEPS]] [--carry-after ...] [--gain-payload-bits B] [--error-trace-range R]
        [--error-feedback] [--rounding-seed N]
        the reverse: the integers, learning with those effects, trained over the run's
        whole schedule into OUT (resuming restarts a float copy of W from the integers').

Measured results: ``docs/experiments-log.md``, "Session 16" to "Session 19" and
"Session 41" (``--engine-noise``).
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from dataclasses import asdict, fields, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from lava_gle.backends import get_backend, make_engine  # noqa: E402
from lava_gle.experiments import mnist1d  # noqa: E402
from lava_gle.experiments import fixed_training as FT  # noqa: E402
from lava_gle.experiments import training as T  # noqa: E402
from lava_gle.experiments.checkpoint import Checkpoint  # noqa: E402
from lava_gle.numerics import fixed as X  # noqa: E402
from lava_gle.numerics import floating as F  # noqa: E402

#: Fields of the run's configuration that the command line replaces (``--gain-max``).
CONFIG_OVERRIDES: dict = {}

#: Step windows of the first batch over which --signals compares.
WINDOWS = ((0, 10), (10, 60), (60, 200), (200, None))


def load_run(run: Path, payload_width: int | None = None, trace_range: float | None = None,
             rounding_seed: int | None = None):
    """(config, data, train config, float network, integer network) of a run directory;
    ``payload_width``: the integers' ``gain_payload_bits`` instead of the run's;
    ``trace_range``: the ``error_trace_range`` of the integers' layers with an error
    normaliser (in RMS of the normalised error; the quantiser's default is
    ``quantize.network.NORM_TRACE_RANGE``, twice it under exact products);
    ``rounding_seed``: the integers' ``fixed_point.seed`` (their learning engines' random
    numbers and error-trace dither) instead of the run's."""
    recorded = Checkpoint(run, {}).recorded_config()
    if recorded is None or "fixed_point" not in recorded:
        raise SystemExit(f"{run}: no checkpoint with recorded formats (a numpy-fixed run "
                         f"of lava-gle 0.x from session 15 on)")
    if (run / "metrics.json").exists():
        raw = json.loads((run / "metrics.json").read_text())["config"]
    else:  # still training: the checkpoint records the same configuration
        raw = {f.name: recorded[f.name] for f in fields(mnist1d.Mnist1dConfig)
               if f.name in recorded}
    config = replace(mnist1d.Mnist1dConfig(**{k: tuple(v) if isinstance(v, list) else v
                                              for k, v in raw.items()}), **CONFIG_OVERRIDES)
    data = mnist1d.load_data(config)
    net, cfg = mnist1d.training_setup(config)
    net = T.scheduled_network(net, cfg)
    netq = FT.with_formats(net, recorded["fixed_point"])
    # the run's timing (chip timing for numpy-fixed-chip): every integer engine below
    # ("numpy-fixed", which keeps a description's timing) then computes the run's integers
    netq = get_backend(recorded.get("backend", "numpy-fixed")).network(netq)
    if payload_width is not None:
        netq = replace(netq, fixed_point={**netq.fixed_point,
                                          "gain_payload_bits": payload_width})
    if trace_range is not None:
        netq = replace(netq, layers=tuple(
            replace(layer, fixed_point={**layer.fixed_point, "error_trace_range": trace_range})
            if layer.error_norm_decay is not None else layer for layer in netq.layers))
    if rounding_seed is not None:
        netq = replace(netq, fixed_point={**netq.fixed_point, "seed": rounding_seed})
    return config, data, cfg, net, netq


#: ``--float-learning`` steps: each replaces one step of the float rule by the engine's.
ENGINE_STEPS = {
    "e": "the error factor is the engine's error trace (dequantised)",
    "E": "as e, with a dither of its own per batch element (a chip per element)",
    "u": "with e or E: the error trace not clipped to its 6 bits",
    "2": "with e or E: a two-range trace, the part of the error beyond the clip traced "
         "again on an 8x coarser LSB (a second 6-bit trace, as y1 could carry it)",
    "p": "the presynaptic factor is the engine's presynaptic trace (dequantised)",
    "g": "the rule's gain is the engine's (rounded to a power of two)",
    "r": "no float copy: each step's update is stochastically rounded into the tags",
    "q": "with r: the engine's rounding (nearest 2**-7 tag LSB, then its 7-bit numbers)",
    "c": "with r: the engine's order (the tags carried into W before the update)",
}


def engine_trace(ql, e_int, dither, clipped: bool = True):
    """Layer ``ql``'s error trace of ``e_int`` as its engine forms it (its mantissa and
    rule: :func:`~lava_gle.numerics.fixed.error_trace`), or without the clip (what the
    ``u`` step and ``--updates`` compare against), and the value of one trace unit in
    ``e_int`` LSB: ``2**trace_shift / trace_mant``, halved for an exact rule's doubled
    trace."""
    unit = 2.0 ** ql.trace_shift / ql.trace_mant
    if clipped:
        e_q, _ = X.error_trace(e_int, ql.trace_shift, dither, ql.rule.exact, ql.trace_mant)
        return e_q, unit / (2 if ql.rule.exact else 1)
    scaled = ql.trace_mant * e_int + (0 if dither is None else dither)
    return X.shift_floor(scaled, ql.trace_shift), unit


#: Bits by which the ``2`` step's second trace is coarser, and the offset of its layer
#: index in the dither streams (:func:`~lava_gle.numerics.fixed.trace_dither`).
COARSE_BITS, COARSE_STREAM = 3, 1000


def learn_as_float(il, fl, steps: str = "", seed: int = 0) -> None:
    """Integer layer ``il`` learns as the float layer ``fl`` would from ``il``'s own
    signals: a float copy of W and b moves by ``fl.eta mean(e p^T)`` (``e`` the normalised
    error ``nu e``, ``p`` the summed payload, both dequantised) and the integer weights and
    tags are set to it, rounded to the tag LSB. ``steps``: letters of
    :data:`ENGINE_STEPS`, the steps done as the learning engine does them (``seed``: the
    quantised network's, for the engine's random numbers)."""
    rng = np.random.default_rng(il.index)
    arrays = {"W": ("tag_W", il.ql.w_exp), "b": ("tag_b", il.ql.b_exp)}
    shadow: dict[str, np.ndarray] = {}  # from the integers at the first update (a resume
    # loads them after this is built)

    def factors(ql, e, p, t):
        e_int, e_frac = e, (X.NORM_FRAC if il.nu is not None else ql.e_bits)
        e_n, p_n = e_int * 2.0 ** -e_frac, p * 2.0 ** -(ql.pre_bits + ql.pre_wide_bits)
        if {"e", "E"} & set(steps):
            if "E" in steps and ql.trace_shift > 0:
                dither = rng.integers(0, 1 << ql.trace_shift, e_int.shape)
            else:
                dither = X.trace_dither(seed, il.index, t, ql.size, ql.trace_shift)
            e_q, unit = engine_trace(ql, e_int, dither, clipped="u" not in steps)
            e_n = e_q * unit * 2.0 ** -e_frac
            if "2" in steps and "u" not in steps:
                # the excess on a coarser LSB, its own dither stream (of the scaled error
                # the trace is taken from: mantissa times e)
                half = 2 if ql.rule.exact else 1
                coarse = ql.trace_shift + COARSE_BITS
                level = (X.ERR_TRACE_MAX // half) << ql.trace_shift  # the clip
                scaled = ql.trace_mant * e_int
                excess = scaled - np.clip(scaled, -level, level)
                c_q, _ = X.error_trace(excess, coarse, X.trace_dither(
                    seed, il.index + COARSE_STREAM, t, ql.size, coarse), ql.rule.exact)
                e_n = e_n + c_q * 2.0 ** (coarse - e_frac) / (half * ql.trace_mant)
        if "p" in steps:
            x0, x1 = X.pre_trace(X.learning_payload(p, ql.pre_wide_bits), ql.pre_signed)
            p_n = x0 * ((x1 - 64) if ql.pre_signed else x1) * 2.0 ** (1 - ql.pre_bits)
        return F.local_gradients(e_n, p_n)

    def round_into_tags(ql, kind, units, t):
        tag = getattr(il, arrays[kind][0])
        if "q" in steps:
            acc = np.floor(units * 2.0 ** X.ACC_FRAC + 0.5).astype(np.int64)
            rand = X.rounding_draws(seed, il.index, t, il.W.shape, True)
            rand7 = rand[0] if kind == "W" else rand[1][:, 0]
            step = (acc >> X.ACC_FRAC) + (rand7 < (acc & ((1 << X.ACC_FRAC) - 1)))
        else:
            step = np.floor(units + rng.random(units.shape)).astype(np.int64)
        if "c" in steps:
            X.carry_tags(getattr(il, kind), tag, ql.tag_bits)
        tag += step
        if "c" not in steps:
            X.carry_tags(getattr(il, kind), tag, ql.tag_bits)

    def learn(e, p, t):
        ql = il.ql  # set_eta replaces it (an epoch schedule)
        if ql.rule is None:
            return
        g_w, g_b = factors(ql, e, p, t)
        for kind, g, rule, target in (("W", g_w, ql.rule, ql.gain_target),
                                      ("b", g_b, ql.bias_rule, ql.bias_gain_target)):
            if rule is None:
                continue
            if "g" in steps:
                g = g * (rule.gain() / target)
            tag, exp = arrays[kind]
            if "r" in steps:
                round_into_tags(ql, kind, fl.eta * g * 2.0 ** (ql.tag_bits - exp), t)
                continue
            if kind not in shadow:
                tags = getattr(il, tag)
                shadow[kind] = il.decode(kind, getattr(il, kind)) + (
                    0.0 if tags is None else tags * 2.0 ** (exp - ql.tag_bits))
            shadow[kind] += fl.eta * g
            units = shadow[kind] * 2.0 ** -exp
            whole = np.clip(np.round(units), X.W_MIN, X.W_MAX)
            getattr(il, kind)[...] = whole
            getattr(il, tag)[...] = np.round((units - whole) * 2.0 ** ql.tag_bits)

    il.learn_synapses = learn


def carry_after(il) -> None:
    """Integer layer ``il`` carries its tags into W again right after each learning
    epoch, so that W holds this step's update at once (the engine carries at the start of
    the next epoch: W lags the tags by one step). Not a chip's arithmetic as far as public
    sources show: a learning epoch's weight update is computed from the tag before it."""
    forward = il.learn_forward

    def learn_forward(e, p, t):
        forward(e, p, t)
        if il.ql.rule is not None:
            il._carry("W", "tag_W")
            il._carry("b", "tag_b")

    il.learn_forward = learn_forward


def error_feedback(il, seed: int) -> None:
    """Integer layer ``il``'s neurons feed their error trace's rounding and clipping
    residual back (noise shaping, as a sigma-delta modulator): each step's trace is taken
    from ``v = l + res`` (``l`` the learning error, normalised where the layer has a
    normaliser) and ``res = v - e_q 2**shift`` is kept per neuron (and batch element)
    within the 24-bit state, so the traces' sum over time follows the errors' sum and an
    error beyond the trace's clip is sent over the next steps instead of lost. One more
    neuron state variable; the learning engine is unchanged. Not kept in checkpoints (a
    resume restarts it at 0). Refused for a layer whose trace has a mantissa: its residual
    is a fraction of the error's LSB."""
    if il.ql.rule is not None and il.ql.trace_mant != 1:
        raise SystemExit(f"error: --error-feedback: layer {il.ql.name!r} forms its error "
                         f"trace with mantissa {il.ql.trace_mant}, whose rounding residual "
                         "the 24-bit error state cannot hold; leave --error-feedback out")
    forward = il.learn_forward
    res: dict[str, np.ndarray] = {}

    def learn_forward(l, p, t):
        ql = il.ql
        if ql.rule is None:
            return
        v = l + res["r"] if "r" in res and res["r"].shape == l.shape else l
        forward(v, p, t)
        dither = X.trace_dither(seed, il.index, t, ql.size, ql.trace_shift)
        e_q, _ = X.error_trace(v, ql.trace_shift, dither, ql.rule.exact)
        q = e_q // 2 if ql.rule.exact else e_q
        sent = q << ql.trace_shift if ql.trace_shift >= 0 else q >> -ql.trace_shift
        res["r"] = X.saturate_state(v - sent)[0]

    il.learn_forward = learn_forward


def on_weight_grid(fl, il) -> None:
    """Float layer ``fl`` sums with its weights and biases on the integer layer ``il``'s
    grid (its exponents, the 9-bit range), in the drive and in the error sent down; it
    learns on its float values, which the integers keep in W and the tags."""
    def grid(x, exp):
        return np.clip(np.round(x * 2.0 ** -exp), X.W_MIN, X.W_MAX) * 2.0 ** exp

    fl.drive = lambda p: F.forward_drive(grid(fl.W, il.ql.w_exp), grid(fl.b, il.ql.b_exp), p)
    fl.error_down = lambda e: F.backward_error(grid(fl.W, il.ql.w_exp), e)


def engines(net, netq, learning: set[int] | None, payload_bits: int | None = None,
            start_integers: bool = False, dtype=np.float64,
            float_learning: str | None = None, carry: str | None = None,
            weight_grid: bool = False, feedback: bool = False):
    """Float and integer engines, learning on; only the projections ``learning`` (layer
    indices; None: all) run their learning epochs. ``payload_bits``: the float engine's
    gained payloads on the integers' 8-bit grid with that many fraction bits;
    ``start_integers``: the float engine starts from the integers' W and b; ``dtype``:
    the float engine's; ``float_learning``: the integers learn as float does
    (:func:`learn_as_float`, with those engine steps); ``carry``: ``all``, ``hidden`` or
    ``out``, these integer layers carry their tags right after the update
    (:func:`carry_after`); ``weight_grid``: the float engine sums with its weights on the
    integers' grid (:func:`on_weight_grid`); ``feedback``: the integers' error traces
    feed their residual back (:func:`error_feedback`)."""
    hooks = [flag for flag, given in (("--float-learning", float_learning is not None),
                                      ("--carry-after", carry), ("--error-feedback", feedback))
             if given]
    if hooks and netq.fixed_point.get("timing") == "chip":
        raise SystemExit(f"{', '.join(hooks)}: replaces the forward array's learning step "
                         "only, and this run trained under chip timing (numpy-fixed-chip), "
                         "whose backward arrays it would leave out of step; use it on a "
                         "numpy-fixed run")
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
    top = len(net.layers) - 1
    for i, (fl, il) in enumerate(zip(out[0].kernels.layers, out[1].kernels.layers)):
        if weight_grid:
            on_weight_grid(fl, il)
        if float_learning is not None and (learning is None or i in learning):
            learn_as_float(il, fl, float_learning, out[1].q.seed)
        if carry in ("all", "hidden" if i < top else "out"):
            carry_after(il)
        if feedback:
            error_feedback(il, out[1].q.seed)
    return out


def train_batches(engine, data, cfg, seed: int, epochs: int, batches: int | None = None):
    """Train ``engine`` as the run does (its batch order, eta schedule and targets) over
    the first ``batches`` batches (default: all) of each of ``epochs`` epochs; yields
    (epoch, batch, correct predictions of the nudged outputs) after every batch."""
    eta = cfg.eta(0)
    batches = batches or -(-len(data.x_train) // cfg.batch)
    for epoch in range(epochs):
        order = T.epoch_order(data.y_train, seed, epoch, cfg.balanced_batches)
        if cfg.eta(epoch) != eta:
            eta = cfg.eta(epoch)
            engine.kernels.set_eta(eta)
        for b in range(batches):
            idx = order[b * cfg.batch:(b + 1) * cfg.batch]
            logits, _ = T.stream_batch(engine, data.x_train[idx], data.y_train[idx],
                                       cfg.readout_start, True, cfg.teach_start,
                                       cfg.target_rate)
            yield epoch, b, int(np.sum(logits.argmax(-1) == data.y_train[idx]))


def probe_learning(run: Path, batches: int, payload_bits: int | None,
                   start_integers: bool, all_only: bool,
                   payload_width: int | None = None,
                   float_learning: str | None = None, carry: str | None = None) -> None:
    config, data, cfg, net, netq = load_run(run, payload_width)
    n = len(net.layers)
    sets = [set(range(k, n)) for k in range(0 if all_only else n - 1, -1, -1)]
    print(f"{run}: training accuracy over epoch 1's first {batches} batches "
          f"({batches * cfg.batch} sequences)")
    print("| projections learning | float | integers | gap |\n| --- | --- | --- | --- |")
    for learning in sets:
        correct = []
        for engine in engines(net, netq, learning, payload_bits, start_integers,
                              float_learning=float_learning, carry=carry):
            hits = sum(h for _, _, h in train_batches(engine, data, cfg, config.seed, 1,
                                                      batches))
            correct.append(100.0 * hits / (batches * cfg.batch))
        names = ", ".join(net.layers[i].name for i in sorted(learning))
        print(f"| {names} | {correct[0]:.1f} | {correct[1]:.1f} | "
              f"{correct[0] - correct[1]:+.1f} |", flush=True)


def train(name: str, net, backend: str, make, run: Path, out: Path, data, cfg, config,
          effects: dict) -> None:
    """``net`` trained on ``backend`` over the run's whole schedule into ``out`` (as the
    run trains, with checkpoints and resume), its engines built by ``make``; prints the
    training and test accuracy per epoch; ``out/eval.txt`` gets, per evaluation, the test
    accuracy with each class's mean logit removed (offset-free) and the largest share of
    the test set one class is predicted for."""
    T.make_engine = make  # train_classifier's engine
    evaluate = T.evaluate

    def evaluate_logged(engine, x, labels, cfg):
        logits, loss = evaluate(engine, x, labels, cfg)
        free = np.mean((logits - logits.mean(axis=0)).argmax(-1) == labels)
        share = np.bincount(logits.argmax(-1), minlength=logits.shape[1]).max() / len(labels)
        with open(out / "eval.txt", "a") as f:
            f.write(f"test {np.mean(logits.argmax(-1) == labels):.4f} offset-free "
                    f"{free:.4f} largest class share {share:.3f}\n")
        return logits, loss

    T.evaluate = evaluate_logged
    result = T.train_classifier(name, net, data, cfg, out,
                                {"effects": effects, "run": str(run), **asdict(config)},
                                backend, config.seed, True)
    print(json.dumps({k: result.history[k] for k in ("train_acc", "test_acc")}))


def train_float(run: Path, out: Path, payload_bits: int | None,
                start_integers: bool, weight_grid: bool) -> None:
    config, data, cfg, net, netq = load_run(run)

    def make(n, backend, optimizer=None, dtype=np.float64):  # engines()' float one
        return engines(n, netq, None, payload_bits, start_integers, dtype,
                       weight_grid=weight_grid)[0]

    train("float with integer effects", net, "numpy", make, run, out, data, cfg, config,
          {"payload_bits": payload_bits, "start_integers": start_integers,
           "weight_grid": weight_grid})


def train_integers(run: Path, out: Path, payload_width: int | None,
                   float_learning: str | None, carry: str | None,
                   trace_range: float | None, feedback: bool = False,
                   rounding_seed: int | None = None) -> None:
    config, data, cfg, net, netq = load_run(run, payload_width, trace_range, rounding_seed)

    def make(n, backend, optimizer=None, dtype=None):  # engines()' integer one
        fe, ie = engines(replace(net, learning=n.learning), n, None,
                         float_learning=float_learning, carry=carry, feedback=feedback)
        engine_eta = ie.kernels.set_eta

        def set_eta(eta: float) -> None:  # the float rule follows the schedule too
            engine_eta(eta)
            fe.kernels.set_eta(eta)

        ie.kernels.set_eta = set_eta
        return ie

    train("integers with float effects", netq, "numpy-fixed", make, run, out, data, cfg,
          config, {"float_learning": float_learning, "carry_after": carry,
                   "gain_payload_bits": payload_width,
                   # recorded only when given: OUT directories from before it resume
                   **({} if trace_range is None else {"error_trace_range": trace_range}),
                   **({"error_feedback": True} if feedback else {}),
                   **({} if rounding_seed is None else {"rounding_seed": rounding_seed})})


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


def probe_gains(run: Path, epochs: int, arithmetic: str, rounding_seed: int | None) -> None:
    """The run's first ``epochs`` epochs in ``arithmetic`` (float or integers), as the run
    trains: per batch the training accuracy (nudged outputs) and per layer with gains the
    largest gain and the number of neurons whose gain is above a tenth of the cap."""
    config, data, cfg, net, netq = load_run(run, rounding_seed=rounding_seed)
    start = netq if arithmetic == "integers" else net
    start = start.with_learning(eta=cfg.eta(0))
    engine = (make_engine(start, "numpy-fixed") if arithmetic == "integers" else
              make_engine(start, "numpy", dtype=np.dtype(cfg.dtype).type))  # as the twin
    layers = [k for k in engine.kernels.layers if k.gain is not None]
    caps = {layer.name: layer.gain_max for layer in net.layers if layer.gain_decay is not None}
    print(f"{run}: {arithmetic}, gain caps " + ", ".join(f"{k} {v:g}" for k, v in caps.items())
          + "; per layer the largest gain / neurons above a tenth of its cap")
    print("| epoch | batch | accuracy | " + " | ".join(k.name for k in layers) + " |")
    print("| --- | --- | --- |" + " --- |" * len(layers))
    for epoch, b, hits in train_batches(engine, data, cfg, config.seed, epochs):
        cells = [f"{k.gain.max():.0f} / {np.sum(k.gain > caps[k.name] / 10)}" for k in layers]
        print(f"| {epoch + 1} | {b} | {100 * hits / cfg.batch:.0f} | " + " | ".join(cells)
              + " |", flush=True)


#: Steps of a sequence over which --updates splits the error mass (the batches follow each
#: other without a reset: a new sample's first steps are the switch transient).
POSITIONS = (0, 5, 20, 60, 180)


def frozen_integers(run: Path, netq, cfg, trained: bool):
    """An integer engine of the run's network, learning off in its synapses and tau (the
    normalisers adapt): the initial network, or with ``trained`` the parameters and
    normaliser state of the run's checkpoint at the rate of its last epoch."""
    engine = make_engine(netq, "numpy-fixed")
    if trained:
        with np.load(run / "checkpoint.npz") as ck:
            arrays = {k[len("train."):]: ck[k] for k in ck.files
                      if k.startswith("train.") and not k.startswith(("train.state.",
                                                                      "train.eps."))}
            epochs = len(ck["history.train_acc"])
        for key in engine.kernels.saturation.counts:  # counters newer than the run
            arrays.setdefault(f"sat.{key}", np.array(0))
        engine.load_state_dict(arrays)
        engine.kernels.set_eta(cfg.eta(epochs - 1))  # the schedule's rate of its last epoch
    engine.learning = True
    for layer in engine.kernels.layers:
        layer.learn_tau = lambda *a, **k: None
    return engine


def probe_updates(run: Path, batches: int, trained: bool) -> None:
    """What the learning engine's error trace does to each layer's update, weights frozen:
    over ``batches`` batches of epoch 1's order, the norm ratio and cosine to the float
    update ``sum_t mean_b(e p^T)`` (``e`` the normalised error, ``p`` the summed payload,
    both dequantised) of the update from the engine's trace, from the same trace
    unclipped, and from ``e`` clipped at the trace's clip without rounding; the share of
    errors beyond the clip and of the error mass ``sum |e|`` they hold, and where in the
    sequence that mass is (:data:`POSITIONS`)."""
    config, data, cfg, net, netq = load_run(run)
    engine = frozen_integers(run, netq, cfg, trained)
    seed, stats = engine.q.seed, {}
    for il in engine.kernels.layers:
        def record(e, p, t, il=il):
            ql = il.ql
            e_int, e_frac = e, (X.NORM_FRAC if il.nu is not None else ql.e_bits)
            dither = X.trace_dither(seed, il.index, t, ql.size, ql.trace_shift)
            e_q, unit = engine_trace(ql, e_int, dither)
            u_q, u_unit = engine_trace(ql, e_int, dither, clipped=False)
            clip = X.ERR_TRACE_MAX // (2 if ql.rule.exact else 1) * u_unit * 2.0 ** -e_frac
            e_n = e_int * 2.0 ** -e_frac
            errors = {"float": e_n, "trace": e_q * unit * 2.0 ** -e_frac,
                      "unclipped": u_q * u_unit * 2.0 ** -e_frac,
                      "clip": np.clip(e_n, -clip, clip)}
            p_n = p * 2.0 ** -(ql.pre_bits + ql.pre_wide_bits) / e_n.shape[0]
            a = stats.setdefault(il.name, {"steps": 0, "n": 0, "beyond": 0,
                                           "mass": np.zeros(len(POSITIONS)),
                                           "mass_beyond": np.zeros(len(POSITIONS))})
            for kind, err in errors.items():
                a[kind] = a.get(kind, 0.0) + err.T @ p_n
            where = np.searchsorted(POSITIONS, a["steps"] % config.seq_len, side="right") - 1
            big = np.abs(e_n) > clip
            a["steps"] += 1
            a["n"] += e_n.size
            a["beyond"] += int(big.sum())
            a["mass"][where] += np.abs(e_n).sum()
            a["mass_beyond"][where] += np.abs(e_n[big]).sum()
        il.learn_synapses = record
    for _ in train_batches(engine, data, cfg, config.seed, 1, batches):
        pass
    spans = [f"{a}-{b - 1}" for a, b in zip(POSITIONS, POSITIONS[1:] + (config.seq_len,))]
    print(f"{run}: {'trained' if trained else 'initial'} network, weights frozen, "
          f"{batches} batches")
    print("| layer | beyond the clip | their share of sum abs e | update of the trace: norm / "
          "cos to float | unclipped | clipped, unrounded | share of the mass beyond the "
          f"clip in steps {', '.join(spans)} |\n|" + " --- |" * 7)
    for name, a in stats.items():
        ref = a["float"].ravel()
        cells = [f"{np.linalg.norm(g) / np.linalg.norm(ref):.2f} / "
                 f"{g @ ref / (np.linalg.norm(g) * np.linalg.norm(ref)):.2f}"
                 for g in (a[k].ravel() for k in ("trace", "unclipped", "clip"))]
        beyond = a["mass_beyond"].sum()
        print(f"| {name} | {a['beyond'] / a['n']:.2%} | {beyond / a['mass'].sum():.3f} | "
              + " | ".join(cells) + " | "
              + ", ".join(f"{m / beyond:.2f}" if beyond else "-" for m in a["mass_beyond"])
              + " |", flush=True)


def probe_engine_noise(run: Path, batches: int, epochs: tuple[int, ...] = (1,)) -> None:
    """How much of each projection's online update is the learning engine's own rounding:
    the run's trained integers, weights frozen (the normalisers adapt), ``batches`` batches
    of epoch 1's order. Each forward array with a learning rule also learns through the
    kernel's own ``learn_forward`` (tags carried first) on scratch copies that nothing
    reads; a copy's change ``dW`` (``W 2**tag_bits + tag``, in tag
    LSB) is set against the ideal update ``I = sum_t e p^T`` of the same (dequantised)
    normalised errors and payloads: ``s``, the regression slope of ``dW`` on ``I``;
    ``noise``, RMS of ``dW - s I``; ``signal``, RMS of ``s I``; ``cos(dW, I)``.

    ``epochs``: learning epochs of K steps, as a chip could run them (the neurons sum their
    learning error over the K steps in their state, the presynaptic neurons send their
    payloads' mean, and the engine runs once per K steps on those; one scratch copy per
    K); K = 1 is the run's own rule. Per K also the cosine of the epochs' own ideal
    ``sum (sum e)(mean p)^T`` to ``I``: how far the approximation turns the update. For
    K = 1 the table adds the share of non-zero error-trace values and the trace alone,
    ``T = sum_t e_q x1^T`` (exact products of the engine's own traces, ``x1 ~ p / 2``).
    Under chip timing the backward arrays are left out (they mirror the forward ones)."""
    import copy
    from lava_gle.numerics.kernels import LearningEpoch, SaturationCounter, epoch_pair
    config, data, cfg, net, netq = load_run(run)
    engine = frozen_integers(run, netq, cfg, True)
    q, stats = engine.q, {}
    for il in engine.kernels.layers:  # every step's pair reaches the probe, whatever the
        il.epoch = None               # run's epochs: the scratch copies keep their own

    def scratch(il, steps: int):
        """A copy of layer kernel ``il`` with arrays of its own, a saturation sink nothing
        reads and learning epochs of ``steps`` steps (a power of two): its ``learn_forward``
        learns as the run's would with ``learning.epoch_steps`` ``steps``, on the copies."""
        k = copy.copy(il)
        for name in ("W", "b", "tag_W", "tag_b"):
            if getattr(il, name) is not None:
                setattr(k, name, getattr(il, name).copy())
        k.sat = SaturationCounter(tuple(il._keys.values()))
        shift = steps.bit_length() - 1
        k.epoch = None if steps == 1 else LearningEpoch(
            steps, k._add_error, lambda p: X.shift_round(p, shift))
        return k

    for il in engine.kernels.layers:
        if il.ql.rule is None:  # frozen (eta_scale 0): no learning epoch
            il.learn_synapses = lambda *a, **k: None
            continue

        def record(l, p, t, il=il):
            ql = il.ql
            frac = X.NORM_FRAC if il.nu is not None else ql.e_bits
            if il.name not in stats:
                stats[il.name] = {
                    "start": il.W.astype(np.int64) * (1 << ql.tag_bits)
                    + (0 if il.tag_W is None else il.tag_W),
                    "ideal": 0.0, "trace": 0.0, "nz": 0, "n": 0,
                    "k": {k: {"kernel": scratch(il, k), "ideal": 0.0} for k in epochs}}
            a = stats[il.name]
            a["ideal"] = a["ideal"] + (l * 2.0 ** -frac).T @ (p * 1.0)
            for k, c in a["k"].items():
                # the kernel's own learning epoch (learning.epoch_steps), on the copies
                pair = epoch_pair(c["kernel"].epoch, l, p)
                if pair is None:
                    continue
                l_k, p_k = pair
                c["ideal"] = c["ideal"] + (l_k * 2.0 ** -frac).T @ (p_k * 1.0)
                c["kernel"].learn_forward(l_k, p_k, t)
                if k == 1:
                    pp = X.learning_payload(p_k, ql.pre_wide_bits)
                    dither = X.trace_dither(q.seed, il.index, t, ql.size, ql.trace_shift)
                    e_q, _ = engine_trace(ql, l, dither)
                    a["trace"] = a["trace"] + e_q.T.astype(np.float64) @ (pp / 2.0)
                    a["nz"] += int(np.count_nonzero(e_q))
                    a["n"] += e_q.size
        il.learn_synapses = record
    for _ in train_batches(engine, data, cfg, config.seed, 1, batches):
        pass

    def cos(x, y):
        return x @ y / (np.linalg.norm(x) * np.linalg.norm(y))

    def change(il, c):
        k = c["kernel"]
        tags = 0 if k.tag_W is None else k.tag_W
        return (k.W.astype(np.int64) * (1 << il.ql.tag_bits) + tags
                - stats[il.name]["start"]).ravel().astype(np.float64)

    def noise_signal(dW, ideal):
        slope = dW @ ideal / (ideal @ ideal)
        return (np.sqrt(np.mean((dW - slope * ideal) ** 2)),
                np.sqrt(np.mean((slope * ideal) ** 2)))

    layers = [il for il in engine.kernels.layers if il.name in stats]
    print(f"{run}: trained integers, weights frozen, {batches} batches of {cfg.batch}; the "
          "learning engine's update dW against the ideal I and the trace alone T")
    if 1 in epochs:
        print("| layer | trace shift | non-zero trace | noise / signal (tag LSB) | "
              "cos(dW, I) | cos(T, I) | cos(dW, T) |\n|" + " --- |" * 7)
        for il in layers:
            a = stats[il.name]
            dW, ideal, trace = change(il, a["k"][1]), a["ideal"].ravel(), a["trace"].ravel()
            noise, signal = noise_signal(dW, ideal)
            print(f"| {il.name} | {il.ql.trace_shift} | {a['nz'] / a['n']:.3f} | "
                  f"{noise:.1f} / {signal:.1f} | {cos(dW, ideal):.3f} | "
                  f"{cos(trace, ideal):.3f} | {cos(dW, trace):.3f} |", flush=True)
    if epochs != (1,):
        print("\nlearning epochs of K steps: noise / signal (tag LSB), cos(dW, I); "
              "cos(epoch ideal, I)")
        print("| layer | " + " | ".join(f"K = {k}" for k in epochs) + " |\n|"
              + " --- |" * (len(epochs) + 1))
        for il in layers:
            a, ideal = stats[il.name], stats[il.name]["ideal"].ravel()
            cells = []
            for k, c in a["k"].items():
                dW = change(il, c)
                noise, signal = noise_signal(dW, ideal)
                cells.append(f"{noise:.1f} / {signal:.1f}, {cos(dW, ideal):.3f}; "
                             f"{cos(c['ideal'].ravel(), ideal):.3f}")
            print(f"| {il.name} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--learning", action="store_true")
    what.add_argument("--signals", action="store_true")
    what.add_argument("--train", type=Path, metavar="OUT")
    what.add_argument("--train-integers", type=Path, metavar="OUT")
    what.add_argument("--updates", action="store_true")
    what.add_argument("--gains", type=int, metavar="EPOCHS")
    what.add_argument("--engine-noise", action="store_true")
    parser.add_argument("--learning-epochs", default="1", metavar="K,K,...")
    parser.add_argument("--trained", action="store_true")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--float-payload-bits", type=int, default=None)
    parser.add_argument("--float-start-integers", action="store_true")
    parser.add_argument("--float-weight-grid", action="store_true")
    parser.add_argument("--all-only", action="store_true")
    parser.add_argument("--gain-payload-bits", type=int, default=None)
    parser.add_argument("--float-learning", nargs="?", const="", default=None,
                        metavar="STEPS")
    parser.add_argument("--carry-after", choices=("all", "hidden", "out"))
    parser.add_argument("--error-trace-range", type=float, default=None, metavar="R")
    parser.add_argument("--error-feedback", action="store_true")
    parser.add_argument("--rounding-seed", type=int, default=None, metavar="N")
    parser.add_argument("--float", action="store_true")
    parser.add_argument("--gain-max", type=float, default=None, metavar="G")
    args = parser.parse_args()
    steps = args.float_learning or ""
    if not set(steps) <= set(ENGINE_STEPS) or ({"q", "c"} & set(steps) and "r" not in steps) \
            or ({"u", "2"} & set(steps) and not {"e", "E"} & set(steps)) \
            or {"u", "2"} <= set(steps):
        parser.error("--float-learning takes letters of " + ", ".join(
            f"{k} ({v})" for k, v in ENGINE_STEPS.items()))
    warnings.simplefilter("ignore")
    if args.gain_max is not None:
        CONFIG_OVERRIDES["gain_max"] = args.gain_max
    if args.gains is not None:
        probe_gains(args.run, args.gains, "float" if args.float else "integers",
                    args.rounding_seed)
    elif args.train_integers is not None:
        train_integers(args.run, args.train_integers, args.gain_payload_bits,
                       args.float_learning, args.carry_after, args.error_trace_range,
                       args.error_feedback, args.rounding_seed)
    elif args.train is not None:
        train_float(args.run, args.train, args.float_payload_bits, args.float_start_integers,
                    args.float_weight_grid)
    elif args.updates:
        probe_updates(args.run, args.batches, args.trained)
    elif args.engine_noise:
        ks = tuple(int(k) for k in args.learning_epochs.split(","))
        if any(k < 1 or k & (k - 1) for k in ks):
            parser.error(f"--learning-epochs {args.learning_epochs}: each K is a power of "
                         "two (the integers average an epoch's payloads with a shift)")
        probe_engine_noise(args.run, args.batches, ks)
    elif args.learning:
        probe_learning(args.run, args.batches, args.float_payload_bits,
                       args.float_start_integers, args.all_only, args.gain_payload_bits,
                       args.float_learning, args.carry_after)
    else:
        probe_signals(args.run, args.noise, args.float_payload_bits, args.float_start_integers,
                      args.gain_payload_bits)


if __name__ == "__main__":
    main()
