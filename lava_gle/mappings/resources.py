"""The resource model: what a block of GLE neurons costs on one neuro core.

A layer ``l`` of ``n_l`` neurons receives ``m = n_{l-1}`` rates from below (the input for
``l = 0``) and, unless it is the output layer, ``n_{l+1}`` errors from above. A *block* is
``n`` consecutive neurons of one *entry* placed on one core. Each layer is one entry (its GLE
neurons, the *soma*) unless its fan-in does not fit one core; then its forward inputs, its
backward inputs or both are split into ``p`` chunks of consecutive inputs, each chunk an entry
of its own: a *dendrite segment* of ``n`` partial-sum compartments that receives the chunk,
holds its synapses and sends one partial sum per neuron to the soma (24-bit, one synaptic
hop, so one time step later). The soma then receives ``p`` partial sums per neuron instead of
the inputs. With learning, the soma feeds each segment back what its plastic synapses need
(the error e for ``W_l``, the rate r for the transpose copy). Demand per resource of a
soma block of ``n`` neurons:

- ``compartments``: ``2 n`` (each GLE neuron is a representation and an error compartment);
  a segment block: ``n``.
- ``neuron_groups``: :data:`GROUPS_PER_BLOCK` (representation and error compartments run
  different neuron programs); a segment block: 1.
- ``input_axons``: ``m`` (one per presynaptic rate; ``n p_f`` partial sums when split)
  ``+ n_{l+1}`` (one per error of the layer above; ``n p_b`` when split) ``+ n`` on the
  output layer (one target value per output neuron) ``+ 1`` when the layer has biases (the
  bias neuron's constant payload, as the fixed-point learning rule of :mod:`lava_gle.microcode`
  learns b through a bias array; the bias neurons, one per payload in use, are shared and not
  counted). With
  learning, an input whose summed payload cannot also be the learning trace arrives twice
  (a second, 8-bit learning payload on an axon of its own, "One payload per spike" in
  ``docs/fixed-point.md``): signed rates (and the signed input) into ``W_l``, rates that
  ``W_l`` traces coarser than their payload (its ``pre_trace_coarsening`` option), the
  gained payloads ``g r`` of a layer with gains when wider than 8 bits
  (``gain_payload_bits``), and every error into the plastic transpose copy; the second
  axon is assumed to address the same synapse rows (not public), so it adds axons,
  messages and traffic but no synapse words. A
  segment block: its chunk (twice as above) ``+ n`` fed back (plastic segments).
- ``output_axons``: each neuron sends its rate to every core that holds the entry receiving
  it (``k_up`` cores: layer ``l+1``'s soma, or the cores of its forward segment for that
  rate; the output layer sends it once, to the host) and, when layer ``l-1`` is a GLE layer,
  its error to the ``k_down`` cores of that layer or of its backward segment:
  ``n (k_up + k_down)``, plus the learning payloads' axons (``n k_up`` for signed rates,
  ``n k_down`` for errors into a plastic transpose copy), plus ``n`` per plastic segment of
  its own. A segment block: ``n``
  (each partial sum goes to the one core holding its neuron). Axons are not shared between
  blocks on one core (conservative).
- ``synapse_words``: synapse memory is laid out per input axon (one row per axon holding its
  synapses to the block's ``n`` neurons, bit-packed: ``ceil(n w / word_bits)`` words): the
  forward rows (``m`` rows), the backward rows (``n_{l+1}`` rows of ``W_{l+1}^T`` or of the
  feedback matrix), one row of one synapse per partial sum, per target and per fed-back
  value, and one bias row of ``n`` synapses. ``w`` is the weight width (9 bits, sign and 8
  magnitude bits, on Loihi 2). This reproduces Intel's published 15 words per axon row of a
  100 x 50 dense layer; see ``docs/mapping.md`` for the fit. A plastic array whose layer keeps
  weight tags (``fixed_point.weight_tag_bits``, learning on) stores each synapse's tag beside
  its weight: ``w +`` :data:`TAG_STORE_BITS` bits per synapse in the layer's forward rows and
  bias row, and in the backward rows (of the layer below) of its plastic transpose copy.
- ``learning_traces`` (only for projections that learn, ``Network.plastic``), after the rules of
  :mod:`lava_gle.microcode`: one presynaptic trace (x1) per plastic input axon and the
  postsynaptic traces of each neuron: ``m + 2 n`` for ``W_l`` (y2 = e+, y3 = e-), ``+ 1``
  for the bias array's axon, and ``n_{l+1} + n`` for the plastic transpose copy (y2 = rate
  trace; ``backward: transpose``, not the output layer); on a split layer the segments hold
  the traces of their chunk (``chunk + 2 n`` forward, ``chunk + n`` backward).

Weight and payload widths come from the profile (:func:`layer_widths`), whose defaults are
the widths of the fixed-point formats (a layer with gains sends ``gain_payload_bits``);
``--weight-bits`` overrides the weight width. Neuron-local normalisers add no compartment:
their state (two mean squares, the factors, an update count) is the neurons' own, their
instructions are counted with the neuron program (:mod:`lava_gle.mappings.report`).
"""
from __future__ import annotations

from dataclasses import dataclass

from lava_gle.counts import is_count
from lava_gle.errors import LavaGleError
from lava_gle.mappings.profiles import HardwareProfile, ProfileError
from lava_gle.network import Network
from lava_gle.quantize.activation import SIGNED_PHI
from lava_gle.quantize.network import Options

#: Resources of one core, in the order every demand tuple uses.
RESOURCES = ("compartments", "neuron_groups", "input_axons", "output_axons",
             "synapse_words", "learning_traces")
#: Profile field holding each resource's per-core capacity.
CAPACITY_FIELDS = {
    "compartments": "compartments_per_core",
    "neuron_groups": "neuron_groups_per_core",
    "input_axons": "input_axons_per_core",
    "output_axons": "output_axons_per_core",
    "synapse_words": "synapse_words_per_core",
    "learning_traces": "learning_traces_per_core",
}
#: Width of a learning-only payload (the learning engine reads 8-bit graded payloads).
LEARNING_PAYLOAD_BITS = 8
#: Stored width of a synaptic tag (Lava's ``tag_1``, the ``t`` of a ``dt`` rule), whatever
#: ``weight_tag_bits`` it holds: the rule moves the tag over its whole range before the next
#: epoch's carry. Lava 0.10's learning engine gives it a sign and 8 bits
#: (``lava/magma/core/learning/constants.py``: ``W_TAG_1_S = W_TAG_1_U + 1 = 9``, the
#: factor width of ``t``; the fixed LearningDense saturates it to -257..255). That Loihi 2
#: stores it at this width beside the weight, in the same bit-packed synapse row, is
#: assumed (not public; Loihi 1 charged weight + delay + tag bits per synapse, as
#: nengo-loihi's ``SynapseFmt.bits_per_axon`` counts). ``docs/mapping.md``, "Weight tags".
TAG_STORE_BITS = 9
COMPARTMENTS_PER_NEURON = 2
GROUPS_PER_BLOCK = 2
#: Roles of an entry: the GLE neurons of a layer, or a dendrite segment of its forward
#: (rates from below) or backward (errors from above) inputs.
SOMA, FORWARD, BACKWARD = "soma", "forward", "backward"


def capacities(profile: HardwareProfile) -> tuple[int, ...]:
    """Per-core capacity of every resource, ordered like :data:`RESOURCES`."""
    return tuple(getattr(profile, CAPACITY_FIELDS[r]) for r in RESOURCES)


@dataclass(frozen=True)
class Widths:
    """Bit widths of one layer: stored forward weights, rate and error payloads."""

    weight_bits: int
    rate_bits: int
    error_bits: int


def layer_widths(net: Network, profile: HardwareProfile,
                 weight_bits: int | None = None) -> list[Widths]:
    """Widths of every layer: the profile's defaults, ``weight_bits`` overriding the weights.

    The fixed-point formats (:mod:`lava_gle.numerics.fixed`) use one width per network:
    9-bit weights (sign and 8 magnitude bits), 8-bit rate payloads and errors sent in the
    24-bit state format; the shipped Loihi 2 profile carries these numbers. ``weight_bits``
    (e.g. ``--weight-bits``) overrides the weight width of every layer.
    """
    bits = profile.weight_bits if weight_bits is None else weight_bits
    if not is_count(bits):
        raise ProfileError(f"weight width must be a positive integer number of bits, got {bits!r}")
    if bits > profile.synapse_word_bits:
        raise ProfileError(f"weight width {bits} bits: must be 1..{profile.synapse_word_bits} "
                           f"(the synapse word of profile {profile.name!r})")
    gained = Options.of(net).gain_payload_bits
    return [Widths(bits, gained if _wide_gains(net, i) else profile.rate_payload_bits,
                   profile.error_payload_bits) for i in range(len(net.layers))]


def _wide_gains(net: Network, i: int) -> bool:
    """Layer ``i`` has gains and sends their payload ``g r`` wider than the learning
    engine's 8 bits (``fixed_point.gain_payload_bits``): the layer above sums that one and
    traces an 8-bit learning payload sent beside it."""
    return net.layers[i].gain_decay is not None and Options.of(net).gain_payload_bits > 8


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class LayerCost:
    """The cost model of one entry (a layer's soma or one dendrite segment of it).

    Attributes
    ----------
    index : int
        Position of the entry in the list of :func:`layer_costs` (blocks refer to it).
    name : str
        The layer's name (soma), ``name/f<j>`` or ``name/b<j>`` (forward/backward segment j).
    size : int
        Neurons of the layer (every entry holds one compartment set per neuron).
    layer : int
        Index of the layer in the network.
    role : str
        :data:`SOMA`, :data:`FORWARD` or :data:`BACKWARD`.
    fan_in : int
        Rates received per neuron by this entry (the chunk on a forward segment; 0 on a soma
        whose forward inputs are split).
    fan_back : int
        Errors received per neuron by this entry (the chunk on a backward segment; 0 on the
        output layer and on a soma whose backward inputs are split).
    chunk : tuple of int
        ``(lo, hi)``: the inputs a segment receives (rates ``lo:hi`` of the layer below or
        errors ``lo:hi`` of the layer above); ``(0, 0)`` on a soma.
    partial_sums : int
        Segments feeding each neuron (0 on a segment and on an unsplit soma).
    feedback : int
        Plastic segments the soma feeds (one value per neuron each), or 1 on a plastic
        segment (the value it receives), else 0.
    up, down : tuple of int
        Entries this entry's neurons send rates (up) / errors (down) to; a segment's ``up`` is
        its soma (one partial sum per neuron).
    is_output : bool
        The output layer receives targets and sends its rates to the host.
    sends_errors_down : bool
        Layer ``l-1`` is a GLE layer (``l >= 1``; soma only).
    weight_bits_forward, weight_bits_backward : int
        Stored width of ``W_l`` and of the backward matrix.
    tag_bits_forward, tag_bits_backward : int
        Stored tag width per synapse of ``W_l`` and its bias row, and of the backward matrix
        (:data:`TAG_STORE_BITS` where that plastic array keeps weight tags, else 0).
    has_bias : bool
        The layer has biases (a bias axon and one bias synapse per neuron; soma only).
    learning, plastic_backward : bool
        Traces for ``W_l`` (it learns, :meth:`~lava_gle.network.Network.plastic`) and for the
        transpose copy of ``W_{l+1}`` (it learns with ``W_{l+1}``).
    widths : Widths
        The layer's widths (payloads set the traffic it sends).
    word_bits : int
        Bits of one synapse memory word.
    learning_payload_up, learning_payload_down : bool
        Its rates (signed, or traced coarser by the layer above; learning on, not the output
        layer) / its errors (sent down to a plastic transpose copy) need a second, 8-bit
        learning payload per neuron and step besides the summed one (``docs/fixed-point.md``, "One payload per spike"): one more
        output axon per neuron and receiving core, and one more message.
    pre_learning_payload : bool
        Its forward inputs arrive twice (signed rates, the signed input, or rates it traces
        coarser (``pre_trace_coarsening``); learning on):
        one more input axon per presynaptic neuron. Errors from above arrive twice
        whenever ``plastic_backward``.
    forward_sums : int
        Forward segments feeding each neuron (0 unless the soma's forward inputs are split;
        ``partial_sums - forward_sums`` are backward segments).
    """

    index: int
    name: str
    size: int
    layer: int
    role: str
    fan_in: int
    fan_back: int
    chunk: tuple[int, int]
    partial_sums: int
    feedback: int
    up: tuple[int, ...]
    down: tuple[int, ...]
    is_output: bool
    sends_errors_down: bool
    weight_bits_forward: int
    weight_bits_backward: int
    has_bias: bool
    learning: bool
    plastic_backward: bool
    widths: Widths
    word_bits: int
    learning_payload_up: bool = False
    learning_payload_down: bool = False
    pre_learning_payload: bool = False
    forward_sums: int = 0
    tag_bits_forward: int = 0
    tag_bits_backward: int = 0

    def row_words(self, n: int, bits: int) -> int:
        """Words of one axon row of ``n`` synapses of ``bits`` bits (bit-packed)."""
        return _ceil_div(n * bits, self.word_bits)

    def demand(self, n: int, k_up: int, k_down: int) -> tuple[int, ...]:
        """Demand of a block of ``n`` neurons, ordered like :data:`RESOURCES`.

        ``k_up`` / ``k_down``: cores each neuron sends its rate / error to (see
        :func:`neighbour_cores`; a segment's single partial sum per neuron ignores them).
        """
        wf, wb = self.weight_bits_forward, self.weight_bits_backward
        one_f = self.row_words(1, wf)  # partial sums, targets, fed-back values: no tags
        wf, wb = wf + self.tag_bits_forward, wb + self.tag_bits_backward
        if self.role != SOMA:
            chunk = self.chunk[1] - self.chunk[0]
            bits = wf if self.role == FORWARD else wb
            words = chunk * self.row_words(n, bits) + self.feedback * n * one_f
            traces = 0
            if self.feedback:
                traces = chunk + (2 * n if self.role == FORWARD else n)
            twice = (self.pre_learning_payload if self.role == FORWARD
                     else self.plastic_backward)
            return (n, 1, chunk * (1 + twice) + self.feedback * n, n, words, traces)
        m, back, bias = self.fan_in, self.fan_back, int(self.has_bias)
        relay = self.partial_sums * n
        in_axons = (m * (1 + self.pre_learning_payload) + back * (1 + self.plastic_backward)
                    + relay + (n if self.is_output else 0) + bias)
        out_axons = sum(self.sends(n, k_up, k_down))
        words = m * self.row_words(n, wf) + back * self.row_words(n, wb) + relay * one_f
        if self.is_output:
            words += n * one_f
        if bias:
            words += self.row_words(n, wf)
        traces = m + 2 * n + bias if self.learning else 0
        if self.plastic_backward:
            traces += back + (n if back else 0)
        return (COMPARTMENTS_PER_NEURON * n, GROUPS_PER_BLOCK, in_axons, out_axons, words, traces)

    def synapses(self, n: int) -> tuple[int, int, int, int]:
        """(forward, backward, target, bias) network synapses held by a block of ``n`` neurons
        (partial-sum and feedback synapses are the split's own: :meth:`relay_synapses`)."""
        if self.role == FORWARD:
            return (n * (self.chunk[1] - self.chunk[0]), 0, 0, 0)
        if self.role == BACKWARD:
            return (0, n * (self.chunk[1] - self.chunk[0]), 0, 0)
        return (n * self.fan_in, n * self.fan_back, n if self.is_output else 0,
                n if self.has_bias else 0)

    def sends(self, n: int, k_up: int, k_down: int) -> tuple[int, int]:
        """``(inference, training_only)``: messages a block of ``n`` neurons sends per step,
        one per output axon (together its ``output_axons`` demand). An inference (learning
        off, no targets: every error is zero) sends rates and forward partial sums only;
        errors, backward partial sums, the learning payloads ("One payload per spike" in
        ``docs/fixed-point.md``) and the values fed back to plastic segments are training's.
        """
        if self.role != SOMA:
            return (n, 0) if self.role == FORWARD else (0, n)
        training = self.feedback * n + (n * k_up if self.learning_payload_up else 0)
        if self.sends_errors_down:
            training += n * k_down * (1 + self.learning_payload_down)
        return n * (1 if self.is_output else k_up), training

    def synapse_ops(self, n: int) -> tuple[int, int]:
        """``(inference, training_only)``: synapses a block of ``n`` neurons holds that work in
        an inference (forward, bias and forward partial-sum synapses) and those that work
        only in training (backward, target, backward partial-sum and fed-back synapses);
        together all of :meth:`synapses` and :meth:`relay_synapses`."""
        fwd, back, target, bias = self.synapses(n)
        relay = self.relay_synapses(n)
        forward_relay = n * self.forward_sums if self.role == SOMA else 0
        return fwd + bias + forward_relay, back + target + relay - forward_relay

    def relay_synapses(self, n: int) -> int:
        """Synapses a block of ``n`` neurons adds for the fan-in split (partial sums in, values
        fed back to plastic segments)."""
        if self.role == SOMA:
            return n * self.partial_sums
        return n * self.feedback


def neighbour_cores(cost: LayerCost, k: list[int]) -> tuple[int, int]:
    """``(k_up, k_down)`` of an entry given the cores ``k[i]`` of every entry: the most cores
    one of its neurons' rates (errors) reaches; 1 up for the output layer (the host)."""
    k_up = max((k[j] for j in cost.up), default=1)
    k_down = max((k[j] for j in cost.down), default=0)
    return k_up, k_down


@dataclass(frozen=True)
class Link:
    """Messages every step from entry ``src`` to entry ``dst``: each neuron ``i`` of ``src``
    in ``lo:hi`` sends ``bits`` to every core of ``dst`` (``to_all``) or only to the core
    holding neuron ``i`` of ``dst`` (a partial sum to its soma, a value fed back to a
    segment). ``training_only``: an inference does not send it (see
    :meth:`LayerCost.sends`)."""

    src: int
    dst: int
    lo: int
    hi: int
    bits: int
    to_all: bool
    training_only: bool = False


def links(costs: list[LayerCost]) -> list[Link]:
    """Every message stream between entries (rates up, errors down, partial sums, feedback)."""
    out = []
    for c in costs:
        if c.role != SOMA:
            out.append(Link(c.index, c.up[0], 0, c.size, c.widths.error_bits, False,
                            c.role == BACKWARD))
            if c.feedback:
                bits = c.widths.error_bits if c.role == FORWARD else c.widths.rate_bits
                out.append(Link(c.up[0], c.index, 0, c.size, bits, False, True))
            continue
        down = c.down if c.sends_errors_down else ()
        streams = [(j, c.widths.rate_bits, False) for j in c.up] + \
                  [(j, c.widths.error_bits, True) for j in down]
        # second, 8-bit learning payloads ("One payload per spike", docs/fixed-point.md)
        streams += [(j, LEARNING_PAYLOAD_BITS, True) for j in c.up if c.learning_payload_up]
        streams += [(j, LEARNING_PAYLOAD_BITS, True) for j in down if c.learning_payload_down]
        for j, bits, training_only in streams:
            lo, hi = costs[j].chunk if costs[j].role != SOMA else (0, c.size)
            out.append(Link(c.index, j, lo, hi, bits, True, training_only))
    return out


def per_layer(costs: list[LayerCost], counts: list[int]) -> list[int]:
    """Per-entry ``counts`` summed per network layer (a layer's soma and its segments)."""
    out = [0] * (max((c.layer for c in costs), default=-1) + 1)
    for c, n in zip(costs, counts):
        out[c.layer] += n
    return out


def _chunks(total: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive ranges covering ``0:total``, sizes differing by at most one."""
    edges = [total * j // parts for j in range(parts + 1)]
    return [(a, b) for a, b in zip(edges, edges[1:])]


def _fits_alone(cost: LayerCost, caps: tuple[int, ...]) -> bool:
    """Whether one neuron of ``cost`` fits an empty core (one core to reach each way; the
    output axons' real counts are checked by the packer)."""
    return all(d <= c for d, c in zip(cost.demand(1, 1, 1), caps))


def _coarser_pre(net: Network, i: int) -> bool:
    """Layer ``i`` may trace its inputs coarser than their payloads (the
    ``pre_trace_coarsening`` option): then they need a learning payload of their own."""
    return net.layers[i].fixed_point.get("pre_trace_coarsening", 0) > 0


def _tag_store_bits(net: Network, i: int) -> int:
    """Tag bits stored per synapse of layer ``i``'s plastic arrays: :data:`TAG_STORE_BITS`
    where the layer keeps weight tags, which it does only where the quantiser gives it
    ``tag_bits`` (its ``weight_tag_bits`` and the network learning, as
    :func:`~lava_gle.quantize.quantize_network` decides), else 0."""
    tagged = net.layers[i].fixed_point.get("weight_tag_bits", 0) and net.plastic(i)
    return TAG_STORE_BITS if tagged else 0


def layer_costs(net: Network, profile: HardwareProfile,
                weight_bits: int | None = None) -> list[LayerCost]:
    """The cost model of every layer of ``net`` (no weight array is touched), one entry per
    layer plus one per dendrite segment of a layer whose fan-in does not fit one core.

    A layer is split only when one of its neurons does not fit an empty core; the forward
    inputs, the backward inputs or both are cut into the fewest equal chunks for which one
    neuron of every segment and of the soma fits (:func:`split_layer`). Entries come in
    network order, each layer's segments before its soma. ``weight_bits`` overrides every
    layer's weight width (see :func:`layer_widths`).
    """
    widths = layer_widths(net, profile, weight_bits)
    caps = capacities(profile)
    sizes = net.sizes
    last = len(net.layers) - 1
    transpose = net.learning.backward == "transpose"
    plans = []
    for i, layer in enumerate(net.layers):
        # W_i learns (net.plastic); the transpose copy of W_{i+1} on this layer's cores
        # learns with W_{i+1}; the rates sent up are traced where W_{i+1} learns
        learning = net.plastic(i)
        above = i < last and net.plastic(i + 1)
        plastic_backward = above and transpose
        base = dict(
            size=layer.size, layer=i, is_output=i == last,
            weight_bits_forward=widths[i].weight_bits,
            weight_bits_backward=widths[i + 1].weight_bits if i < last else widths[i].weight_bits,
            tag_bits_forward=_tag_store_bits(net, i),
            tag_bits_backward=_tag_store_bits(net, i + 1) if plastic_backward else 0,
            has_bias=layer.bias, learning=learning,
            plastic_backward=plastic_backward, widths=widths[i],
            word_bits=profile.synapse_word_bits,
            learning_payload_up=above and (layer.phi in SIGNED_PHI
                                           or _coarser_pre(net, i + 1)
                                           or _wide_gains(net, i)),
            learning_payload_down=learning and transpose and i >= 1,
            pre_learning_payload=learning and (i == 0 or net.layers[i - 1].phi in SIGNED_PHI
                                               or _coarser_pre(net, i)
                                               or _wide_gains(net, i - 1)))
        plans.append((layer.name, base,
                      split_layer(layer.name, base, sizes[i], sizes[i + 2] if i < last else 0,
                                  caps)))
    # entry indices: each layer's segments, then its soma
    first: list[int] = []
    n = 0
    for _, _, (pf, pb) in plans:
        first.append(n)
        n += (pf if pf > 1 else 0) + (pb if pb > 1 else 0) + 1
    costs = []
    for i, (name, base, (pf, pb)) in enumerate(plans):
        soma = first[i] + (pf if pf > 1 else 0) + (pb if pb > 1 else 0)
        costs.extend(_entries(name, base, first[i], soma, sizes[i],
                              sizes[i + 2] if i < last else 0, pf, pb,
                              up=_receivers(plans, first, i + 1, FORWARD) if i < last else (),
                              down=_receivers(plans, first, i - 1, BACKWARD) if i else ()))
    return costs


def _receivers(plans: list, first: list[int], i: int, role: str) -> tuple[int, ...]:
    """Entries of layer ``i`` that receive its rates from below (FORWARD) or its errors from
    above (BACKWARD): the soma, or its segments of that side."""
    pf, pb = plans[i][2]
    soma = first[i] + (pf if pf > 1 else 0) + (pb if pb > 1 else 0)
    if role == FORWARD:
        return tuple(range(first[i], first[i] + pf)) if pf > 1 else (soma,)
    start = first[i] + (pf if pf > 1 else 0)
    return tuple(range(start, start + pb)) if pb > 1 else (soma,)


def _segment(name: str, base: dict, index: int, soma: int, role: str, j: int,
             chunk: tuple[int, int]) -> LayerCost:
    """Dendrite segment ``j`` of ``role`` receiving inputs ``chunk`` (see the module doc)."""
    plastic = base["learning"] if role == FORWARD else base["plastic_backward"]
    width = chunk[1] - chunk[0]
    return LayerCost(index=index, name=f"{name}/{role[0]}{j}", role=role,
                     fan_in=width if role == FORWARD else 0,
                     fan_back=width if role == BACKWARD else 0, chunk=chunk, partial_sums=0,
                     feedback=int(plastic), up=(soma,), down=(), sends_errors_down=False,
                     **base)


def _entries(name: str, base: dict, first: int, soma: int, fan_in: int, fan_back: int,
             pf: int, pb: int, up: tuple[int, ...], down: tuple[int, ...]) -> list[LayerCost]:
    """The entries of one layer split ``pf`` x ``pb`` (1 = not split), indices from ``first``."""
    out = []
    feeds = 0
    for role, parts, total in ((FORWARD, pf, fan_in), (BACKWARD, pb, fan_back)):
        if parts <= 1:
            continue
        plastic = base["learning"] if role == FORWARD else base["plastic_backward"]
        feeds += parts if plastic else 0
        out.extend(_segment(name, base, first + len(out), soma, role, j, chunk)
                   for j, chunk in enumerate(_chunks(total, parts)))
    out.append(LayerCost(
        index=soma, name=name, role=SOMA, fan_in=fan_in if pf <= 1 else 0,
        fan_back=fan_back if pb <= 1 else 0, chunk=(0, 0),
        partial_sums=(pf if pf > 1 else 0) + (pb if pb > 1 else 0), feedback=feeds,
        forward_sums=pf if pf > 1 else 0,
        up=up, down=down, sends_errors_down=base["layer"] >= 1, **base))
    return out


def split_layer(name: str, base: dict, fan_in: int, fan_back: int,
                caps: tuple[int, ...]) -> tuple[int, int]:
    """``(p_f, p_b)``: the chunks to cut a layer's forward and backward inputs into.

    ``(1, 1)`` when one neuron fits an empty core. Otherwise the forward side alone, the
    backward side alone, then both, each into the fewest chunks for which one neuron of
    every segment fits; the first of these whose soma also fits wins. Returns ``(1, 1)``
    when no split helps (the packer then names the resource that does not fit).
    """
    def soma_fits(pf: int, pb: int) -> bool:
        return _fits_alone(_entries(name, base, 0, 0, fan_in, fan_back, pf, pb, (), ())[-1],
                           caps)

    if soma_fits(1, 1):
        return 1, 1
    pf = _fewest_chunks(name, base, FORWARD, fan_in, caps)
    pb = _fewest_chunks(name, base, BACKWARD, fan_back, caps)
    for cand in ((pf, 1), (1, pb), (pf, pb)):
        if min(cand) >= 1 and cand != (1, 1) and soma_fits(*cand):
            return cand
    return 1, 1


def _fewest_chunks(name: str, base: dict, role: str, total: int,
                   caps: tuple[int, ...]) -> int:
    """The fewest chunks ``p >= 2`` of ``total`` inputs for which one neuron of the largest
    segment (``ceil(total / p)`` inputs) fits an empty core; 0 if none. The demand grows
    with the chunk, so a bisection over ``p`` finds it."""
    def ok(p: int) -> bool:
        return _fits_alone(_segment(name, base, 0, 0, role, 0, (0, _ceil_div(total, p))), caps)

    if total < 2 or not ok(total):
        return 0
    lo, hi = 2, total
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


#: What to try when a resource runs out, per resource.
SUGGESTIONS = {
    "compartments": "use smaller blocks (--block-size) or a profile with more compartments",
    "neuron_groups": "use a profile with more neuron groups per core",
    "input_axons": "narrow the layer below or the layer above (each block receives every rate "
                   "from below and every error from above)",
    "output_axons": "use smaller blocks (--block-size) so each core sends fewer axons, or "
                    "narrow the neighbouring layers",
    "synapse_words": "lower the weight width (--weight-bits) or use smaller blocks",
    "learning_traces": "disable learning or narrow the neighbouring layers",
}


class DoesNotFitError(LavaGleError, ValueError):
    """A network cannot be mapped: names the layer, the resource, the overshoot and a fix.

    Attributes
    ----------
    layer : str or None
        The layer that does not fit (None when the whole network exceeds the system).
    resource : str
        A name of :data:`RESOURCES`, or ``chips``.
    demand, capacity : int
        What is needed and what there is (overshoot = demand - capacity).
    suggestion : str
        What to change.
    """

    def __init__(self, layer: str | None, resource: str, demand: int, capacity: int,
                 suggestion: str, detail: str = ""):
        self.layer, self.resource = layer, resource
        self.demand, self.capacity, self.suggestion = demand, capacity, suggestion
        where = f"layer {layer!r}" if layer is not None else "the network"
        pct = 100.0 * (demand - capacity) / capacity if capacity else float("inf")
        super().__init__(f"{where} does not fit: {resource} needs {demand:,} but the limit is "
                         f"{capacity:,} (over by {demand - capacity:,}, {pct:.1f}%)"
                         f"{detail}; {suggestion}")
