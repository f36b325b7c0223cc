"""``lava-gle experiment NAME [--backend B] [--seed S] [--quick] [--learn-tau] --out DIR``

Runs one of the paper's experiments (``lagline``, ``mnist1d``, ``yinyang``; see
``docs/experiments.md``) and writes ``DIR/metrics.json``, PNG figures, ``DIR/log.txt``
and ``DIR/checkpoint.npz``. Ctrl-C saves a checkpoint; the same command resumes it.
While a run is alive, ``DIR/run.lock`` keeps a second run out of ``DIR``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from lava_gle.backends import BACKENDS, STEPPING
from lava_gle.commands.options import natural_int, nonnegative_float, out_path, positive_int
from lava_gle.errors import LavaGleError
from lava_gle.results import prepare_out_dir

#: Experiment names, in the order ``--help`` lists them.
EXPERIMENTS = ("lagline", "mnist1d", "yinyang")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "experiment", help="run one of the paper's experiments (lagline, mnist1d, yinyang)",
        description="Train and evaluate one of the paper's experiments; write metrics.json, "
                    "figures, a log and a checkpoint into --out. Ctrl-C saves the checkpoint; "
                    "rerunning the same command resumes it.")
    p.add_argument("name", choices=EXPERIMENTS, help="which experiment")
    p.add_argument("--backend", default="numpy",
                   choices=[n for n, b in BACKENDS.items() if not b.fused],
                   help="backend that trains the network (default: numpy)")
    p.add_argument("--seed", type=natural_int, default=0,
                   help="seed of weights, data order, inputs")
    p.add_argument("--quick", action="store_true",
                   help="a short run that shows learning in seconds (not the paper's numbers)")
    p.add_argument("--learn-tau", action="store_true",
                   help="lagline: the student learns tau_m too")
    p.add_argument("--optimizer", choices=("adam", "sgd"),
                   help="Adam on the local signals (default on numpy) or GLE's own SGD rule, "
                        "the chip's (default and only choice on the fixed-point backends)")
    p.add_argument("--sgd-eta", type=nonnegative_float, metavar="ETA",
                   help="SGD rule: learning rate of the weights per step (lagline: 1.0, 0.1 "
                        "with --learn-tau; yinyang 2.0 with out scaled by 0.001; mnist1d 0.00004 "
                        "x batch (0.004 at batch 100) with h0, h1, h2, out scaled by 0.0005, "
                        "0.00375, 0.025, 0.1)")
    p.add_argument("--halve-every", type=natural_int, metavar="EPOCHS",
                   help="mnist1d, yinyang, SGD rule: halve eta after every EPOCHS epochs "
                        "(default 0: constant)")
    p.add_argument("--eta-scale", action="append", metavar="LAYER=SCALE",
                   help="mnist1d, yinyang, SGD rule: the projection into LAYER learns at "
                        "eta * SCALE (repeatable; defaults yinyang out=0.001, mnist1d h0=0.0005 "
                        "h1=0.00375 h2=0.025 out=0.1)")
    p.add_argument("--error-bound", action="append", metavar="LAYER=BOUND",
                   help="mnist1d, yinyang: clip LAYER's error to +-BOUND as its neurons form "
                        "it, in float and fixed point alike; LAYER=none: no bound (repeatable; "
                        "defaults with the SGD rule: mnist1d h0=128 h1=64 h2=6.4 h3=16 h4=4 "
                        "h5=16 out=32, yinyang none; docs/model.md, Bounded errors)")
    p.add_argument("--normalizers", type=float, metavar="DECAY",
                   help="mnist1d, yinyang, SGD rule: neuron-local normalisers, running "
                        "averages with this decay (e.g. 0.9990234375 = 1 - 2**-10, the form "
                        "fixed point needs): hidden neurons send g r with g = 1/RMS(r), every "
                        "layer learns from e/RMS(e); the default eta scales and error bounds "
                        "then do not apply (docs/model.md); the default --sgd-eta is the "
                        "plain rule's: mnist1d's recipes with normalisers use --sgd-eta 0.002 "
                        "at batch 100 and 0.000004 at batch 1 (0.00002, half the default, "
                        "stayed at 10 %% online), both with --eta-scale h0=0.1 --eta-scale "
                        "h1=0.1 (docs/experiments.md)")
    p.add_argument("--gain-decay", type=float, metavar="DECAY",
                   help="with --normalizers: the gains' own decay (default: the normalisers'); "
                        "a longer average than the errors', e.g. 0.99993896484375 = "
                        "1 - 2**-14, keeps the frozen gains of the trained network closer to "
                        "those it learned with")
    p.add_argument("--gain-max", action="append", metavar="G|LAYER=G",
                   help="mnist1d, yinyang, with --normalizers: the largest gain (1-1000, "
                        "default 1000), the gain of a nearly silent neuron, which it sends "
                        "up once it fires; G caps every hidden layer, LAYER=G one layer "
                        "(repeatable; a G beside them caps the others; docs/model.md)")
    p.add_argument("--gain-payload-bits", type=int, metavar="BITS",
                   help="mnist1d, yinyang, fixed point with --normalizers: width of the gained "
                        "payloads g r a hidden layer sends up (8-24; default 16, 8: the "
                        "8-bit learning payload itself, as before 2026-12-02; "
                        "docs/fixed-point.md)")
    p.add_argument("--rounding-seed", type=natural_int, metavar="N",
                   help="mnist1d, yinyang, fixed point: seed of the learning engines' random "
                        "numbers (stochastic rounding, error-trace dither; default 0); runs "
                        "that differ in it only are draws of the integers' rounding, and "
                        "share one float twin (a copy of its float_same_rule directory)")
    p.add_argument("--formats", choices=("initial", "float"),
                   help="mnist1d, yinyang, fixed point: size the formats from the initial "
                        "network or from the float run with the same rule, trained first "
                        "(default: float)")
    p.add_argument("--weight-tag-bits", action="append", metavar="LAYER=BITS",
                   help="mnist1d, yinyang, fixed point: keep BITS (5-7; 0: off) low-order "
                        "bits of the weights and biases into LAYER in their synaptic tags "
                        "while learning (repeatable; defaults: yinyang hidden=7 out=5, "
                        "mnist1d 7 on every layer; docs/experiments.md)")
    p.add_argument("--no-bias", action="append", metavar="LAYER",
                   help="mnist1d, yinyang: build LAYER without a bias, in float and fixed "
                        "point alike (repeatable; default: every layer has one); online "
                        "MNIST-1D's h0 and h1 biases stay near zero in float while the "
                        "integers' rounding random-walks them (docs/experiments-log.md, "
                        "Session 39)")
    p.add_argument("--epoch-steps", type=positive_int, metavar="K",
                   help="mnist1d, yinyang, --optimizer sgd: learn once every K steps from "
                        "the learning error summed and the presynaptic rate averaged over "
                        "them (learning.epoch_steps, the learning engine's t_epoch; fixed "
                        "point: a power of two; default 1: every step; docs/model.md, "
                        "Learning epochs); a resumed run may change it from the start of "
                        "a training epoch")
    p.add_argument("--loss", choices=("ce", "mse"),
                   help="mnist1d, yinyang: output error, cross-entropy (float only; default on "
                        "numpy) or MSE against one-hot target rates (default on fixed point)")
    p.add_argument("--batch", type=positive_int,
                   help="mnist1d, yinyang: samples side by side (default 100; 1: online, as "
                        "a chip learns)")
    p.add_argument("--target-rate", type=nonnegative_float, metavar="RATE",
                   help="mnist1d, yinyang, --loss mse: target rate of the sample's class (the "
                        "others' is 0; defaults: yinyang 1.0, mnist1d 10.0)")
    p.add_argument("--teach-start", type=natural_int, metavar="STEPS",
                   help="mnist1d, yinyang: first step of each sample with a target; before it "
                        "no output error (defaults: mnist1d 0, yinyang 2)")
    p.add_argument("--average-window", type=nonnegative_float, metavar="BATCHES",
                   help="mnist1d, yinyang: test and keep the weights averaged over about the "
                        "last BATCHES batches (an exponential moving average the host keeps "
                        "after every batch; >= 1; default: the weights as they learned; "
                        "docs/experiments-log.md, Session 29)")
    p.add_argument("--average-every", type=positive_int, metavar="BATCHES",
                   help="with --average-window: update the average after every BATCHES-th "
                        "batch only, by BATCHES / window of the way (the window keeps its "
                        "length): the host reads the chip's weights BATCHES times less often "
                        "(default 1; at most the window)")
    p.add_argument("--sgd-eta-tau", type=nonnegative_float, metavar="ETA",
                   help="lagline, SGD rule: learning rate of tau_m (default 1.0)")
    p.add_argument("--epochs", type=positive_int, help="mnist1d, yinyang: number of epochs")
    p.add_argument("--train-samples", type=positive_int, metavar="N",
                   help="mnist1d, yinyang: train on the first N of MNIST-1D's 4,000 training "
                        "sequences, or on N generated Yin-Yang points (default: all, 5,000), "
                        "for a short probe of a recipe; the test set is unchanged")
    p.add_argument("--model", choices=("42k", "15k"), help="mnist1d: model size (default 42k)")
    p.add_argument("--balanced-batches", action="store_true",
                   help="mnist1d: class-balanced batches instead of plain shuffling")
    p.add_argument("--fresh", action="store_true",
                   help="discard a checkpoint in --out instead of resuming it")
    p.add_argument("--part", choices=("twin", "integers"),
                   help="mnist1d, yinyang, fixed-point backends: train only the float twin or "
                        "only the integers, so that two processes train them on two cores "
                        "at once; then run the same command without --part: both resume as "
                        "finished and it writes the metrics. --part integers needs formats "
                        "that do not wait for the twin's end (a checkpoint in --out that "
                        "records them, or --formats initial)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or log echo")
    p.add_argument("--out", type=out_path, required=True, help="output directory")
    p.set_defaults(run=run)


#: Options of the classification experiments (mnist1d, yinyang) that lagline refuses.
CLASSIFICATION_OPTIONS = ("loss", "batch", "halve_every", "eta_scale", "formats",
                          "weight_tag_bits", "error_bound", "normalizers", "gain_decay",
                          "gain_max", "gain_payload_bits", "rounding_seed", "teach_start",
                          "target_rate", "average_window", "average_every", "train_samples",
                          "no_bias", "epoch_steps", "part")


#: Environment variables by which a user sets the BLAS / OpenMP thread count.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads() -> contextlib.AbstractContextManager:
    """One BLAS thread while an experiment runs (its Lava processes fork from it), unless
    the environment sets a count: the experiments' matrices are small, so a pool gains
    nothing on an idle machine (MNIST-1D 42k, batch 100: 769-787 steps/s with 1, 2 or the
    default threads), and with other jobs on the cores a full pool per process made an
    epoch 3x slower (docs/performance.md)."""
    if any(var in os.environ for var in THREAD_ENV):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=1, user_api="blas")


def run(args: argparse.Namespace) -> int:
    if args.name != "lagline" and args.learn_tau:
        raise LavaGleError("--learn-tau applies to the lagline experiment only")
    if args.name == "lagline" and args.epochs is not None:
        raise LavaGleError("--epochs applies to mnist1d and yinyang; lagline runs the "
                           "paper's 4,050 time units (or --quick)")
    if args.name != "lagline" and args.sgd_eta_tau is not None:
        raise LavaGleError("--sgd-eta-tau applies to the lagline experiment only")
    given = [o for o in CLASSIFICATION_OPTIONS if getattr(args, o) is not None]
    if args.name == "lagline" and given:
        flags = [f"--{o.replace('_', '-')}" for o in given]
        raise LavaGleError(f"{' and '.join(flags)} appl{'ies' if len(flags) == 1 else 'y'} "
                           "to mnist1d and yinyang, not to lagline")
    if args.name != "mnist1d" and (args.model is not None or args.balanced_batches):
        raise LavaGleError("--model and --balanced-batches apply to the mnist1d experiment only")
    if args.backend not in STEPPING:
        raise LavaGleError(
            f"backend {args.backend!r} has no stepping engine for the experiments' chunked, "
            "resumable training (a Lava run starts from the zero state); train with "
            f"{' or '.join(STEPPING)}. mnist1d and yinyang run their trained networks "
            "through lava-float and lava-fixed themselves (lava_agreement in metrics.json), "
            "and `lava-gle demo` runs LagLine through both")
    prepare_out_dir(args.out)
    opts = dict(backend=args.backend, quiet=args.quiet, fresh=args.fresh)
    if args.part is not None:
        opts["part"] = args.part
    if args.name != "lagline":
        from lava_gle.experiments.rules import loss_note, rule_overrides
        rule = rule_overrides(args.backend, args.optimizer, args.loss, args.batch,
                              args.sgd_eta, args.halve_every, args.eta_scale,
                              args.formats, args.weight_tag_bits, args.target_rate,
                              args.error_bound, args.normalizers, args.gain_decay,
                              args.gain_payload_bits, args.gain_max, args.rounding_seed,
                              args.average_window, args.average_every, args.no_bias,
                              args.epoch_steps)
        note = loss_note(rule, args.loss)
        if note:
            print(note, file=sys.stderr)
        if args.teach_start is not None:
            rule["teach_start"] = args.teach_start
        if args.train_samples is not None:
            rule["n_train"] = args.train_samples
    if args.name == "lagline":
        from lava_gle.experiments import lagline as experiment
        config = experiment.config_from_args(args.seed, args.quick, args.learn_tau,
                                             args.optimizer, args.backend, args.sgd_eta,
                                             args.sgd_eta_tau)
    elif args.name == "mnist1d":
        from lava_gle.experiments import mnist1d as experiment
        config = experiment.config_from_args(args.seed, args.quick, args.epochs,
                                             args.model, args.balanced_batches, **rule)
    else:
        from lava_gle.experiments import yinyang as experiment
        config = experiment.config_from_args(args.seed, args.quick, args.epochs, **rule)
    with blas_threads():
        metrics = getattr(experiment, f"run_{args.name}")(config, args.out, **opts)
    if args.part is not None:
        print(f"{args.name}: the {'float twin' if args.part == 'twin' else 'integers'} "
              f"trained in {args.out}; run the same command without --part for the "
              "metrics (what is trained resumes as finished)")
        return 0
    if args.quiet:
        return 0
    print(f"{args.name}: metrics in {args.out}/metrics.json")
    return 0 if metrics else 1
