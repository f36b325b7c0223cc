"""Build connected Lava Processes from a network description.

Two shapes of the same network:

- **structural** (:func:`build_structural`): per layer a
  :class:`~lava_gle.processes.gle.process.GleProjection` and a
  :class:`~lava_gle.processes.gle.process.GleNeurons`, plus one
  :class:`~lava_gle.processes.stream.process.StreamSource` for the input and the
  targets: 2 L + 1 Lava processes (one OS process each; 2 L under chip timing, below);
- **fused** (:func:`build_fused`): one
  :class:`~lava_gle.processes.network.process.GleNetworkProcess` holding the streams
  and every layer.

Wiring of the structural network (all direct port links, no delay)::

    source.x_out -> proj[0].p_in
    proj[l].s_out -> neurons[l].s_in          neurons[l].e_out -> proj[l].e_in
    neurons[l].r_out -> proj[l+1].p_in        proj[l+1].eps_out -> neurons[l].d_in
    source.y_out -> neurons[L-1].y_in

Under chip timing (fixed point) each layer's neurons Process holds its forward array and
each layer above the first has a
:class:`~lava_gle.processes.gle.process.GleBackwardArray` ``back[l]``: 2 L Lava
processes, and no signal goes back to its sender inside a step::

    source.x_out -> neurons[0].p_in
    neurons[l].r_out -> neurons[l+1].p_in     neurons[l].r_out -> back[l+1].r_in
    neurons[l].e_out -> back[l].e_in          back[l].eps_out -> neurons[l-1].d_in
    source.y_out -> neurons[L-1].y_in

A layer with an error normaliser (``error_norm_decay``) sends its learning error too,
``neurons[l].l_out -> proj[l].l_in`` (``back[l].l_in`` under chip timing), while the
projection into it learns; its normalisers' state lives with its neurons. A frozen
projection (``eta_scale`` 0, :meth:`~lava_gle.network.Network.plastic`) gets no
learning epoch in any Process.

Learnable parameters and recordings are shared arrays in ``directory``
(see :mod:`lava_gle.runtime.shared_memory`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lava_gle.runtime.fork_safety import prepare_for_lava

prepare_for_lava()  # before the first Lava import (see lava_gle.runtime.fork_safety)

from lava.magma.core.process.process import AbstractProcess

from lava_gle.network import Network
from lava_gle.processes.gle.process import (
    BACKWARD_KINDS, FORWARD_KINDS, NEURON_RECORDABLE, NORMALISER_KINDS, GleBackwardArray,
    GleNeurons, GleProjection, Normalisers, Output, Recording, Synapses, shared_of,
)
from lava_gle.processes.network.process import GleNetworkProcess, LayerMemory
from lava_gle.processes.stream.process import StreamSource
from lava_gle.runtime.shared_memory import SharedArray, SharedCounters


@dataclass
class LayerHandle:
    """One layer of a built network, found by name.

    ``neurons``/``projection`` are the layer's Processes (None in a fused build;
    ``projection`` None under chip timing, where ``backward`` is the backward array's
    Process of a layer above the first); ``arrays`` the shared arrays of its parameters by
    kind (:class:`~lava_gle.processes.network.process.LayerMemory`); ``recording`` what its
    model records (None: nothing).
    """

    name: str
    index: int
    arrays: dict[str, SharedArray]
    recording: Recording | None
    neurons: GleNeurons | None = None
    projection: GleProjection | None = None
    backward: GleBackwardArray | None = None


@dataclass
class BuiltNetwork:
    """Processes of one network, ready to run ``steps`` Lava steps.

    ``processes``: every leaf Process; ``root``: the one to call ``run``/``stop`` on
    (any Process of a connected graph runs all of it); ``layers``: handles by layer name;
    ``saturation``: the fixed-point models' saturation counters (None for float models).
    """

    net: Network
    steps: int
    processes: list[AbstractProcess]
    root: AbstractProcess
    layers: dict[str, LayerHandle] = field(default_factory=dict)
    saturation: SharedCounters | None = None


def _counters(kernels, directory: str) -> SharedCounters | None:
    """Saturation counters of fixed-point kernels, named as ``numpy-fixed`` names its
    counts (None for float kernels, which clip nothing)."""
    if kernels.saturation is None:
        return None
    return SharedCounters.create(directory, "saturation", tuple(kernels.saturation.counts))


def _record_names(keys: set[str], layer: str, is_top: bool) -> tuple[str, ...]:
    names = [v for v in NEURON_RECORDABLE[:-1] if f"{v}.{layer}" in keys]
    if is_top and "output" in keys:
        names.append("output")
    return tuple(names)


def _memory(kernels, directory: str, steps: int, record: set[str]) -> list[LayerMemory]:
    """Shared arrays of every layer: its learnable arrays by kind (the kernel's
    ``parameters``; ``tau_m`` only where it learns; the ``drift`` figures with a backward
    array), in the kernels' own dtypes and units, starting from their current values, and
    its recording."""
    lrn = kernels.net.learning
    out = []
    top = len(kernels.layers) - 1
    for i, k in enumerate(kernels.layers):
        params = k.parameters()
        if not (lrn.enabled and lrn.learn_tau):
            params.pop("tau_m", None)
        if getattr(k, "B", None) is not None:  # chip timing: the backward array's drift
            params["drift"] = k.drift
        arrays = {kind: SharedArray.create(directory, f"{kind}.{i}", a.shape, a.dtype.name,
                                           init=a) for kind, a in params.items()}
        names = _record_names(record, k.name, i == top)
        rec = None
        if names:
            rec = Recording(names, SharedArray.create(
                directory, f"rec.{i}", (steps, len(names), k.size),
                np.dtype(kernels.record_dtype).name))
        out.append(LayerMemory(arrays, rec))
    return out


def build_structural(kernels, x: np.ndarray, y: np.ndarray | None, *, directory: str,
                     record: set[str], reset_interval: int = 0) -> BuiltNetwork:
    """Structural build: a StreamSource, then per layer a GleProjection and GleNeurons
    (under chip timing: GleNeurons holding the forward array, and a GleBackwardArray for
    every layer above the first).

    Parameters
    ----------
    kernels : FloatKernels or FixedKernels
        The network's layer kernels (:mod:`lava_gle.numerics.kernels`); their current parameters
        are the start values, and every Process computes with them.
    x : ndarray [steps, input size]
        Input rows, one per Lava step.
    y : ndarray [steps, output size] (mse) or [steps, 1] (ce class index), or None
    directory : str
        Where the shared arrays are created.
    record : set of str
        Golden keys to record (``r.hidden``, ``output``, ...).
    reset_interval : int
        Zero all state every this many steps (0: never).
    """
    net, steps, lrn = kernels.net, x.shape[0], kernels.net.learning
    chip = getattr(getattr(kernels, "q", None), "chip_timing", False)
    counters = _counters(kernels, directory)
    source = StreamSource(x=x, y=y, kernels=kernels, saturation=counters, name="streams")
    processes: list[AbstractProcess] = [source]
    built = BuiltNetwork(net, steps, processes, source, saturation=counters)
    memory = _memory(kernels, directory, steps, record)
    below_rate = source.x_out
    below_neurons: GleNeurons | None = None
    top = len(kernels.layers) - 1
    for i, (k, mem) in enumerate(zip(kernels.layers, memory)):
        output = Output(kernels, lrn.loss, y is not None) if i == top else None
        forward = shared_of(mem.arrays, FORWARD_KINDS)
        plastic = net.plastic(i)  # a frozen projection (eta_scale 0) gets no learning epoch
        synapses = Synapses(forward, plastic) if chip else None
        tau_m = mem.arrays.get("tau_m")
        norm = shared_of(mem.arrays, NORMALISER_KINDS)
        # the arrays into the layer learn from its normalised error in another Process
        normalised = (plastic and k.error_ms is not None
                      and not (chip and below_neurons is None))
        neurons = GleNeurons(kernel=k, output=output, learn_tau=tau_m is not None,
                             tau_m_shared=tau_m, reset_interval=reset_interval,
                             recording=mem.recording, saturation=counters,
                             synapses=synapses,
                             normalisers=Normalisers(norm, lrn.enabled) if norm else None,
                             sends_learning_error=normalised, name=f"{k.name}.neurons")
        handle = LayerHandle(k.name, i, mem.arrays, mem.recording, neurons=neurons)
        if chip:
            below_rate.connect(neurons.p_in)
            if below_neurons is not None:
                back = handle.backward = GleBackwardArray(
                    kernel=k, learning=plastic, reset_interval=reset_interval,
                    shared=shared_of(mem.arrays, BACKWARD_KINDS), W_shared=mem.arrays["W"],
                    saturation=counters, normalised=normalised, name=f"{k.name}.backward")
                below_rate.connect(back.r_in)
                neurons.e_out.connect(back.e_in)
                if normalised:
                    neurons.l_out.connect(back.l_in)
                back.eps_out.connect(below_neurons.d_in)
                processes.append(back)
        else:
            proj = handle.projection = GleProjection(
                kernel=k, learning=plastic, sends_error=i > 0,
                reset_interval=reset_interval, shared=forward, saturation=counters,
                normalised=normalised, name=f"{k.name}.projection")
            below_rate.connect(proj.p_in)
            proj.s_out.connect(neurons.s_in)
            neurons.e_out.connect(proj.e_in)
            if normalised:
                neurons.l_out.connect(proj.l_in)
            if below_neurons is not None:
                proj.eps_out.connect(below_neurons.d_in)
            processes.append(proj)
        processes.append(neurons)
        below_rate, below_neurons = neurons.r_out, neurons
        built.layers[k.name] = handle
    if y is not None:
        source.y_out.connect(below_neurons.y_in)
    return built


def build_fused(kernels, x: np.ndarray, y: np.ndarray | None, *, directory: str,
                record: set[str], reset_interval: int = 0) -> BuiltNetwork:
    """Fused build: one GleNetworkProcess running the engine over ``kernels`` (parameters
    as in :func:`build_structural`)."""
    from lava_gle.numerics.engine import Engine
    net, steps = kernels.net, x.shape[0]
    memory = _memory(kernels, directory, steps, record)
    counters = _counters(kernels, directory)
    proc = GleNetworkProcess(engine=Engine(net, kernels=kernels), x=x, y=y, layers=memory,
                             reset_interval=reset_interval, saturation=counters,
                             name=net.name)
    built = BuiltNetwork(net, steps, [proc], proc, saturation=counters)
    for i, (k, mem) in enumerate(zip(kernels.layers, memory)):
        built.layers[k.name] = LayerHandle(k.name, i, mem.arrays, mem.recording)
    return built
