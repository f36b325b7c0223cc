"""Build connected Lava Processes from a network description.

Two shapes of the same network:

- **structural** (:func:`build_structural`): per layer a
  :class:`~lava_gle.processes.gle.process.GleProjection` and a
  :class:`~lava_gle.processes.gle.process.GleNeurons`, plus one
  :class:`~lava_gle.processes.stream.process.StreamSource` for the input and the
  targets: 2 L + 1 Lava processes (one OS process each);
- **fused** (:func:`build_fused`): one
  :class:`~lava_gle.processes.network.process.GleNetworkProcess` holding the streams
  and every layer.

Wiring of the structural network (all direct port links, no delay)::

    source.x_out -> proj[0].p_in
    proj[l].s_out -> neurons[l].s_in          neurons[l].e_out -> proj[l].e_in
    neurons[l].r_out -> proj[l+1].p_in        proj[l+1].eps_out -> neurons[l].d_in
    source.y_out -> neurons[L-1].y_in

Learnable parameters and recordings are shared arrays in ``directory``
(see :mod:`lava_gle.shared`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lava_gle.forking import prepare_for_lava

prepare_for_lava()  # before the first Lava import (see lava_gle.forking)

from lava.magma.core.process.process import AbstractProcess

from lava_gle.network import Network
from lava_gle.processes.gle.process import (
    NEURON_RECORDABLE, GleNeurons, GleProjection, Nudging, Recording, TauLearning,
)
from lava_gle.processes.network.process import GleNetworkProcess, LayerMemory
from lava_gle.processes.stream.process import StreamSource
from lava_gle.shared import SharedArray, SharedCounters


@dataclass
class LayerHandle:
    """One layer of a built network, found by name.

    ``neurons``/``projection`` are the layer's Processes (None in a fused build);
    ``W``, ``b``, ``tau_m`` the shared arrays of its parameters (``tau_m`` only when
    it learns); ``recording`` what its model records (None: nothing).
    """

    name: str
    index: int
    W: SharedArray
    b: SharedArray
    tau_m: SharedArray | None
    recording: Recording | None
    neurons: GleNeurons | None = None
    projection: GleProjection | None = None


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


def _counters(quantized, directory: str) -> SharedCounters | None:
    """Saturation counters named as the numpy-fixed engine names its counts."""
    if quantized is None:
        return None
    from lava_gle.fixed_engine import saturation_keys
    return SharedCounters.create(directory, "saturation", saturation_keys(quantized))


def _record_names(keys: set[str], layer: str, is_top: bool) -> tuple[str, ...]:
    names = [v for v in NEURON_RECORDABLE[:-1] if f"{v}.{layer}" in keys]
    if is_top and "output" in keys:
        names.append("output")
    return tuple(names)


def _memory(net: Network, directory: str, steps: int, record: set[str], dtype: str
            ) -> list[tuple[SharedArray, SharedArray, SharedArray | None, Recording | None]]:
    """Shared arrays (W, b, tau_m, recording) of every layer."""
    lrn = net.learning
    out = []
    for i, layer in enumerate(net.layers):
        w = SharedArray.create(directory, f"W.{i}", net.weight_shape(i), dtype)
        b = SharedArray.create(directory, f"b.{i}", (layer.size,), dtype)
        tau = None
        if lrn.enabled and lrn.learn_tau:
            tau = SharedArray.create(directory, f"tau_m.{i}", (layer.size,),
                                     init=layer.tau_m_array())
        names = _record_names(record, layer.name, i == len(net.layers) - 1)
        rec = None
        if names:
            rec = Recording(names, SharedArray.create(directory, f"rec.{i}",
                                                      (steps, len(names), layer.size)))
        out.append((w, b, tau, rec))
    return out


def build_structural(net: Network, x: np.ndarray, y: np.ndarray | None, *, directory: str,
                     record: set[str], reset_interval: int = 0,
                     param_dtype: str = "float64", quantized=None) -> BuiltNetwork:
    """Structural build: a StreamSource, then per layer a GleProjection and GleNeurons.

    Parameters
    ----------
    net : Network
        Its ``initial_weights``/``initial_biases`` are the start values.
    x : ndarray [steps, input size]
        Input rows, one per Lava step.
    y : ndarray [steps, output size] (mse) or [steps, 1] (ce class index), or None
    directory : str
        Where the shared arrays are created.
    record : set of str
        Golden keys to record (``r.hidden``, ``output``, ...).
    reset_interval : int
        Zero all state every this many steps (0: never).
    param_dtype : str
        dtype of the shared parameter arrays (the models' working dtype).
    quantized : QuantizedNetwork or None
        Integer formats, handed to every Process as ``fixed_point`` (fixed_pt models)
        with the shared saturation counters.
    """
    steps = x.shape[0]
    lrn = net.learning
    counters = _counters(quantized, directory)
    fixed = (lambda i: None) if quantized is None else (lambda i: (quantized, i, counters))
    source = StreamSource(x=x, y=y, fixed_point=fixed(None), name="streams")
    processes: list[AbstractProcess] = [source]
    built = BuiltNetwork(net, steps, processes, source, saturation=counters)
    memory = _memory(net, directory, steps, record, param_dtype)
    below_rate = source.x_out
    below_neurons: GleNeurons | None = None
    top = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        w_sh, b_sh, tau_sh, rec = memory[i]
        proj = GleProjection(weights=net.initial_weights(i), biases=net.initial_biases(i),
                             feedback=net.feedback_weights(i), eta=lrn.eta,
                             learning=lrn.enabled, learn_bias=layer.bias, sends_error=i > 0,
                             reset_interval=reset_interval, W_shared=w_sh, b_shared=b_sh,
                             fixed_point=fixed(i), name=f"{layer.name}.projection")
        nudging = Nudging(lrn.loss, lrn.beta, y is not None) if i == top else None
        tau = None if tau_sh is None else TauLearning(lrn.eta_tau, net.tau_m_min, tau_sh)
        neurons = GleNeurons(shape=(layer.size,), tau_m=layer.tau_m, tau_r=layer.tau_r,
                             phi=layer.phi, dt=net.dt, gamma=lrn.gamma,
                             prospective_errors=lrn.prospective_errors, nudging=nudging,
                             tau_learning=tau, reset_interval=reset_interval, recording=rec,
                             fixed_point=fixed(i), name=f"{layer.name}.neurons")
        below_rate.connect(proj.p_in)
        proj.s_out.connect(neurons.s_in)
        neurons.e_out.connect(proj.e_in)
        if below_neurons is not None:
            proj.eps_out.connect(below_neurons.d_in)
        below_rate, below_neurons = neurons.r_out, neurons
        processes += [proj, neurons]
        built.layers[layer.name] = LayerHandle(layer.name, i, w_sh, b_sh, tau_sh, rec,
                                               neurons=neurons, projection=proj)
    if y is not None:
        source.y_out.connect(below_neurons.y_in)
    return built


def build_fused(net: Network, x: np.ndarray, y: np.ndarray | None, *, directory: str,
                record: set[str], reset_interval: int = 0,
                param_dtype: str = "float64", quantized=None) -> BuiltNetwork:
    """Fused build: one GleNetworkProcess (parameters as in :func:`build_structural`)."""
    steps = x.shape[0]
    memory = _memory(net, directory, steps, record, param_dtype)
    layers = [LayerMemory(w, b, tau, rec) for w, b, tau, rec in memory]
    counters = _counters(quantized, directory)
    proc = GleNetworkProcess(net=net, x=x, y=y, layers=layers, reset_interval=reset_interval,
                             saturation=counters, name=net.name)
    built = BuiltNetwork(net, steps, [proc], proc, saturation=counters)
    for i, (layer, (w, b, tau, rec)) in enumerate(zip(net.layers, memory)):
        built.layers[layer.name] = LayerHandle(layer.name, i, w, b, tau, rec)
    return built
