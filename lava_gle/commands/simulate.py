"""``lava-gle simulate NET|BUNDLE_DIR --inputs X [--targets Y] [--backend B] [--calibrate]
--out T.npz``"""
from __future__ import annotations

import argparse

import numpy as np

from lava_gle.backends import BACKENDS, FIXED, simulate
from lava_gle.commands.options import out_path
from lava_gle.description import load_network
from lava_gle.errors import LavaGleError
from lava_gle.results import prepare_out_file
from lava_gle.traces import save_traces


def add_parser(sub) -> None:
    p = sub.add_parser("simulate", help="run a network on an input stream and write its traces",
                       description="Run NET on the inputs and write every state variable "
                                   "(golden key layout: u/u_prosp/r/v/e.<layer> [T, batch, size], "
                                   "W/b.<layer>, output) to an .npz file. A bundle directory "
                                   "runs the bundle's own integers (fixed-point backends).")
    p.add_argument("net", metavar="NET|BUNDLE_DIR",
                   help="network description (.json, .yaml), or a bundle directory from "
                        "'lava-gle map --out'")
    p.add_argument("--inputs", required=True, help=".npy of shape [T, in] or [T, batch, in]")
    p.add_argument("--targets", help=".npy: mse [T, (batch,) out] floats; ce [T, (batch)] ints")
    p.add_argument("--backend", choices=sorted(BACKENDS),
                   help="default: numpy, or numpy-fixed for a bundle")
    p.add_argument("--out", type=out_path, required=True,
                   help="output file (.npz appended when missing; checked before the run)")
    add_calibrate_option(p)
    add_allow_nan_option(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(run=run)


def add_allow_nan_option(p) -> None:
    p.add_argument("--allow-nan", action="store_true",
                   help="let a float run that produces NaN or inf (diverges) go on, with a "
                        "warning, instead of stopping with an error naming where")


def add_calibrate_option(p) -> None:
    p.add_argument("--calibrate", action="store_true",
                   help="size the fixed-point formats (input range, rate and potential "
                        "formats) from a float run on these inputs first; options the "
                        "description sets win (docs/fixed-point.md)")


def calibrated(net, x: np.ndarray, wanted: bool):
    """``net`` calibrated on ``x`` ([T, in] or [T, B, in]) when ``wanted``."""
    if not wanted:
        return net
    from lava_gle.calibration import calibrate
    return calibrate(net, x)


def load_array(path: str | None, what: str) -> np.ndarray | None:
    """np.load with a clear error for a missing or unreadable file."""
    if path is None:
        return None
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise LavaGleError(f"--{what}: file not found: {path}") from None
    except EOFError:
        raise LavaGleError(f"--{what}: {path} is empty; write the array with numpy.save") from None
    except (OSError, ValueError) as exc:
        try:
            with open(path, "rb") as fh:
                head = fh.read(6)
        except OSError:  # a directory, no permission: said as NumPy said it
            head = b"\x93NUMPY"
        if head != b"\x93NUMPY" and not head.startswith(b"PK"):  # neither .npy nor .npz
            raise LavaGleError(
                f"--{what}: {path} is not a .npy file (no NumPy header); write the array with "
                "numpy.save, e.g. for a text file numpy.save('X.npy', numpy.loadtxt(FILE, "
                "delimiter=','))") from None
        raise LavaGleError(f"--{what}: cannot read {path} as a .npy array ({exc})") from None
    if not isinstance(data, np.ndarray):  # an .npz archive, whatever its name
        names = list(data.files)
        data.close()
        raise LavaGleError(f"--{what}: {path} is an .npz archive (arrays {names}), not a .npy "
                           f"array; save the one array with numpy.save")
    return data


def read_bundle_to_run(path: str, backend: str | None, calibrate: bool):
    """``(net, qnet, backend)`` of a bundle directory: its integers
    (:meth:`~lava_gle.mappings.bundle.Bundle.quantized`), run by a fixed-point backend
    (default ``numpy-fixed``). A float backend or ``--calibrate`` would not run the
    bundle's integers and is refused."""
    from lava_gle.mappings.bundle import NETWORK, read_bundle
    backend = backend or "numpy-fixed"
    if backend not in FIXED:
        raise LavaGleError(f"--backend {backend}: a bundle holds integers, which only "
                           f"{', '.join(FIXED)} run; for a float run simulate its "
                           f"description, {path}/{NETWORK}")
    if calibrate:
        raise LavaGleError("--calibrate: a bundle's formats were fixed when it was mapped; "
                           "calibrate with 'lava-gle map NET --calibrate INPUTS --out DIR'")
    bundle = read_bundle(path)
    return bundle.net, bundle.quantized(), backend


def run(args: argparse.Namespace) -> int:
    from lava_gle.mappings.bundle import is_bundle
    qnet = None
    if is_bundle(args.net):
        net, qnet, backend = read_bundle_to_run(args.net, args.backend, args.calibrate)
    else:
        net, backend = load_network(args.net), args.backend or "numpy"
    x = load_array(args.inputs, "inputs")
    y = load_array(args.targets, "targets")
    out = prepare_out_file(args.out, ".npz")
    net = calibrated(net, x, args.calibrate)
    traces = simulate(net, x, y, backend=backend, record=True, progress=not args.quiet,
                      allow_nan=args.allow_nan, qnet=qnet)
    save_traces(out, traces)
    if not args.quiet:
        T = traces["output"].shape[0]
        source = "" if qnet is None else f" (bundle {args.net})"
        print(f"{net.describe()}{source}: {T} steps with backend {backend} -> {out}")
    return 0
