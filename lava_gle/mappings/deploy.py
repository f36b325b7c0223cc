"""Deploy a bundle (or a network, mapped on the way) to Loihi 2 through Lava's hardware path.

Lava's ``Loihi2HwCfg`` needs Intel's proprietary **lava-loihi** extension (its neuro-core and
embedded-C process models) and a Loihi 2 system. Without the extension, open-source Lava
fails deep inside compilation with an unrelated ``NameError``. :func:`deploy` therefore
checks for the extension first (:func:`missing_hardware_modules`) and, when it is absent,
stops before importing anything of Lava's hardware path, with a
:class:`~lava_gle.errors.BackendUnavailableError` naming what is missing, how to get it and
where the bundle is.

What runs is what was mapped: :meth:`Bundle.quantized` gives the bundle's own integers
(formats checked against its manifest, weights and biases from its ``arrays.npz``), checked
before anything else, run with chip timing (``docs/fixed-point.md``, "Chip timing": a
chip has separate backward arrays, whatever the description's ``fixed_point.timing``). The hardware run itself goes through one function,
:func:`run_on_loihi2`, which builds that network with the Lava network builder
(:class:`lava_gle.runtime.LavaNetwork`, fixed-point models) and runs it with
``Loihi2HwCfg``. Tests replace the import function and the runner.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from lava_gle.backends import get_backend
from lava_gle.errors import BackendUnavailableError, LavaGleError
from lava_gle.mappings.bundle import Bundle, is_bundle, read_bundle, write_bundle
from lava_gle.mappings.mapper import map_network
from lava_gle.network import Network
from lava_gle.numerics.streams import prepare_streams
from lava_gle.quantize import QuantizedNetwork

#: Modules of lava-loihi that Lava's run configs import for the hardware path.
HARDWARE_MODULES = ("lava.magma.core.model.nc.model", "lava.magma.core.model.c.model")
HOW_TO_GET = ("lava-loihi is Intel's proprietary Lava extension for Loihi 2; it and access to "
              "a Loihi 2 system (e.g. a Kapoho Point board) come with membership of the Intel "
              "Neuromorphic Research Community (INRC); install it into this environment next "
              "to lava-nc 0.10.0")

#: ``runner(bundle, qnet, inputs, targets) -> traces``: runs ``qnet`` (the bundle's integers).
Runner = Callable[[Bundle, QuantizedNetwork, np.ndarray, "np.ndarray | None"], dict]


def missing_hardware_modules(import_module: Callable = importlib.import_module) -> list[str]:
    """The modules of :data:`HARDWARE_MODULES` that cannot be imported here."""
    missing = []
    for name in HARDWARE_MODULES:
        try:
            import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def run_on_loihi2(bundle: Bundle, qnet: QuantizedNetwork, inputs: np.ndarray,
                  targets: np.ndarray | None) -> dict:
    """Run ``qnet``, the bundle's integers (:meth:`Bundle.quantized`), on Loihi 2:
    LavaNetwork with fixed-point models and ``Loihi2HwCfg(select_tag="fixed_pt")``; returns
    the traces of :meth:`LavaNetwork.run`.

    lava-gle has no neuro-core (Nc) models yet: ``Loihi2HwCfg`` is given lava-gle's
    fixed-point Python models for every Process, so they run on the host of the Loihi 2
    system, bit-exact with ``lava-fixed`` (chip timing, which :func:`deploy` sets).
    """
    from lava_gle.runtime.fork_safety import prepare_for_lava
    prepare_for_lava()  # before the first Lava import (see lava_gle.runtime.fork_safety)
    from lava.magma.core.run_configs import Loihi2HwCfg

    from lava_gle.runtime.simulator import LavaNetwork
    with LavaNetwork(bundle.net, backend="fixed", qnet=qnet) as lava_net:
        return lava_net.run(inputs, targets, record=True, config_class=Loihi2HwCfg)


def prepare_bundle(source: Network | str | os.PathLike, bundle_dir: str | os.PathLike | None,
                   profile: str = "loihi2", strategy: str = "dense",
                   chips: int | None = None) -> Bundle:
    """A bundle from a bundle directory, a description file or a :class:`Network`.

    Networks are mapped (raising if they do not fit) and written to ``bundle_dir``
    (default ``<name>.bundle`` in the working directory).
    """
    if isinstance(source, (str, os.PathLike)) and is_bundle(source):
        return read_bundle(source)
    if isinstance(source, Network):
        net = source
    else:
        from lava_gle.description import load_network
        net = load_network(source)
    out = Path(bundle_dir) if bundle_dir is not None else Path(f"{net.name}.bundle")
    write_bundle(map_network(net, profile, chips=chips, strategy=strategy), out)
    return read_bundle(out)


def deploy(source: Network | str | os.PathLike, inputs, targets=None, *,
           bundle_dir: str | os.PathLike | None = None, profile: str = "loihi2",
           strategy: str = "dense", chips: int | None = None,
           import_module: Callable = importlib.import_module,
           runner: Runner = run_on_loihi2) -> dict:
    """Run a bundle or network on Loihi 2 and return its traces.

    Parameters
    ----------
    source : Network, description path or bundle directory
    inputs : array [T, in] or [T, 1, in]
        Input stream (float units, as ``lava-gle simulate``).
    targets : array [T, out] or [T, 1, out], optional
    bundle_dir : path, optional
        Where a network's bundle is written (ignored for a bundle directory).
    profile, strategy, chips
        Mapping options for a network (see :func:`~lava_gle.mappings.mapper.map_network`).
    import_module, runner
        Seams for tests: how lava-loihi is looked for, and what runs the bundle.

    Raises
    ------
    BackendUnavailableError
        lava-loihi is not installed (names the missing modules, how to get them and the
        bundle), or the bundle holds no fixed-point parameters.
    BundleError
        The bundle's formats or arrays are not what it says (:meth:`Bundle.quantized`).
    """
    bundle = prepare_bundle(source, bundle_dir, profile, strategy, chips)
    qnet = bundle.quantized() if bundle.has_fixed_point else None
    # the streams are checked on any machine, not first on the one with the chip
    x, y = prepare_streams(bundle.net, inputs, targets)
    if x.shape[1] != 1:
        raise LavaGleError(f"inputs have shape {list(np.shape(inputs))}; deploy runs one "
                           f"stream: [T, {bundle.net.input.size}] or "
                           f"[T, 1, {bundle.net.input.size}]")
    problems = []
    missing = missing_hardware_modules(import_module)
    if missing:
        problems.append(
            f"Loihi 2 hardware is not available: lava-loihi is not installed (cannot import "
            f"{', '.join(missing)}). {HOW_TO_GET}. Open-source Lava cannot run Loihi2HwCfg. "
            f"The deployment bundle is in {bundle.path}: copy it to a machine with "
            f"lava-loihi and run 'lava-gle deploy {bundle.path}' there.")
    if not bundle.has_fixed_point:
        notes = "; ".join(bundle.manifest.get("notes", [])) or "no fixed-point section"
        problems.append(f"The bundle in {bundle.path} has no quantised parameters ({notes}); "
                        "Loihi 2 runs fixed-point only.")
    if problems:
        raise BackendUnavailableError(" ".join(problems))
    # a chip runs its backward arrays separately: what lava-fixed runs (chip timing)
    qnet = get_backend("lava-fixed").timed(qnet)
    return runner(bundle, qnet, x[:, 0], None if y is None else y[:, 0])
