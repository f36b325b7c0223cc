"""The integer GLE neuron step as a program in a small instruction set, and its interpreter.

Loihi 2 neurons run microcode; what public sources show of it (``docs/fixed-point.md``,
section 8) is multiplies with a shift and a rounding mode, saturating adds, shifts,
compare-and-select, random bits and sending a graded spike. This module writes one step of
:func:`lava_gle.numerics.fixed.neuron_step` in those terms, so the operations a
deployment needs can be read and counted, and :func:`execute` runs the program on NumPy
arrays (one register = one value per neuron) bit for bit as ``numpy-fixed`` computes.

Instruction set (``dst`` and register operands are names; constants are integers or
per-neuron integer arrays):

============================  ============================================  ===============
op                            meaning                                       public source
============================  ============================================  ===============
``mulsr dst a b k``           ``(a * b + 2**(k-1)) >> k`` (``a*b << -k``,   multiply with
                              ``k <= 0``): multiply, shift, round half up   shift + rounding
``add dst a b``/``sub``       wide add / subtract (no saturation)           yes
``addsat dst a b``            ``a + b`` saturated to 24 bit signed,         saturating add
                              clipped values counted
``abs dst a``                 ``|a|``                                       yes
``clip dst a lo hi``          saturate to ``[lo, hi]`` (counted where the   compare-select
                              variable counts clips)
``max dst a b``               ``max(a, b)``                                 compare-select
``sel dst cond a b``          ``a`` where ``cond > 0`` else ``b``            compare-select
``ge dst a b``/``le``         1 where ``a >= b`` (``a <= b``), else 0        compare
``mov dst a``                 copy                                          yes
``shr dst a k``               ``a >> k``: arithmetic shift right (floor)    shifts
``rand dst k``                ``k`` uniform random bits (the interpreter    random bits
                              reads them from the input register ``dst``,   for microcode
                              so that it can replay an engine's draws)
``mulw dst a b k``            ``mulsr`` whose product exceeds the 37 bits   no (width not
                              the neuron step's need (a square of a 24-bit  public)
                              value, a gain times a 24-bit rate)
``mulsv dst a b kreg``        ``mulsr`` with a per-neuron shift held in a   no
                              register (``kreg < 0``: an exact left shift)
``rsqrt dst a k lim``         ``min(round(2**k / sqrt(a)), lim)``, ``lim``  no (Lava's
                              where ``a`` is 0                              InvSqrt: Newton
                                                                            iterations)
``rsqrtf dst a lim``          ``min(2**16 / sqrt(a), lim)`` as a 16-bit     no
                              mantissa (``dst``) and its shift (``dst_s``):
                              ``dst 2**-dst_s``
============================  ============================================  ===============

The neuron-local normalisers (:func:`normaliser_program`) need the last four: their
mean squares are 46-bit, and their inverse square roots are evaluated in float64
(correctly rounded) where a chip would iterate.

sigmoid, tanh and softplus are piecewise polynomials (:class:`lava_gle.numerics.fixed.
Segments`): ``abs`` folds the potential, a chain of compares and selects picks the
segment's start and coefficients (constants of the program), Horner's rule evaluates it
(``mulsr`` and ``add``), and selects unfold it by the sign. No table is read. tau_m
learning's division has no public counterpart either; :func:`factor_ratio_without_divide`
computes its factors without one.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lava_gle.numerics import fixed as X


#: Operations with a public counterpart in Loihi 2 neuron microcode.
PUBLIC_OPS = frozenset({"mulsr", "add", "sub", "addsat", "abs", "clip", "max", "sel", "ge",
                        "le", "mov", "shr", "rand"})


@dataclass(frozen=True)
class Instr:
    """One instruction: ``op dst args...`` (registers are names, constants numbers)."""

    op: str
    dst: str
    args: tuple

    def __str__(self) -> str:
        def show(a):
            if isinstance(a, np.ndarray):
                return f"[{a.size} per-neuron]" if a.size > 1 else str(int(a))
            return str(a)
        return f"{self.op:<7}{self.dst:<9}" + " ".join(show(a) for a in self.args)


@dataclass(frozen=True)
class Program:
    """A neuron program: instructions, the input registers it reads and the saturation
    counters it keeps (register -> counted variable name)."""

    instrs: tuple[Instr, ...]
    inputs: tuple[str, ...]
    counted: dict

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.instrs)

    def __len__(self) -> int:
        return len(self.instrs)


def _factor(out: list[Instr], dst: str, src: str, f: X.Factor) -> None:
    out.append(Instr("mulsr", dst, (src, f.mant, f.shift)))


def neuron_program(c: X.FixedNeuronConstants) -> Program:
    """The program of one layer's neuron step (inputs ``u, v, g, s, d``; results ``u_new,
    u_prosp, p, g_new, v_new, e``), from its constants."""
    out: list[Instr] = []
    counted = {}
    out.append(Instr("mulsr", "i", ("g", "d", X.GATE_BITS)))        # i = phi'(u^-) * d
    if c.prospective:  # e: the error as formed; a bounded one (error_bound) is clipped from it
        out.append(Instr("sub", "dv", ("i", "v")))
        _factor(out, "t", "dv", c.dt_r)
        out.append(Instr("addsat", "v_new", ("v", "t")))
        _factor(out, "t", "dv", c.tau_m_r)
        e = "e" if c.e_max is None else "e_formed"
        out.append(Instr("addsat", e, ("v", "t")))
        if c.e_max is None:
            counted["e"] = "e"
    else:
        out.append(Instr("addsat", "v_new", ("i", 0)))
        e = "v_new"
        if c.e_max is None:
            out.append(Instr("mov", "e", ("v_new",)))
    counted["v_new"] = "v"
    if c.e_max is not None:  # the model's clip (and what it clips from): not counted
        out.append(Instr("clip", "e", (e, -c.e_max, c.e_max)))
    out.append(Instr("sub", "du", ("s", "u")))
    if c.gamma is not None:  # du may exceed the multiplier: clamped (counted) before it
        _factor(out, "t", "e", c.gamma)
        out.append(Instr("sub" if c.gamma_negative else "add", "du", ("du", "t")))
        out.append(Instr("clip", "du", ("du", -c.du_max, c.du_max)))
        counted["du"] = "du"
    _factor(out, "t", "du", c.dt_m)
    out.append(Instr("addsat", "u_new", ("u", "t")))
    _factor(out, "t", "du", c.tau_r_m)
    out.append(Instr("addsat", "u_prosp", ("u", "t")))
    counted.update(u_new="u", u_prosp="u_prosp")
    _activation(out, c.phi)
    if c.phi.counts_clips:
        counted["p"] = "r"
    return Program(tuple(out), ("u", "v", "g", "s", "d"), counted)


def normaliser_program(nf: X.NormaliserFormat | None, signed: bool,
                       learning: bool = True) -> Program | None:
    """The program of one layer's neuron-local normalisers around its neuron step
    (``FixedLayer.step``, ``adapt``, ``rate`` and ``learning_error`` of
    :mod:`lava_gle.numerics.kernels`), batch 1.

    Inputs: ``d`` (the error from above, before the step), ``p`` and ``e`` (the rate and
    error after it) and the state: per normaliser ``x`` (``r`` for gains, ``e`` for
    errors) the mean square ``ms_x`` and its update schedule, ``n_x`` (updates so far),
    ``m_x = 2**(s - shift)`` and ``nxt_x`` (the next power of two of ``n_x``), and the
    factors ``gamma`` and ``nu`` (``nu_s``) of the last update. In order: the error from
    above times the gain (``dg``, clipped to the state, counted as ``q``); after the
    neuron step, each mean square's update ``ms += round((x**2 - ms) 2**-shift)`` with
    ``shift = min(floor(log2 n), s)`` (as ``m`` halves at powers of two, ``round(y
    2**-shift) = (y m + 2**(s-1)) >> s``); the factors from the new mean squares; the
    gained payload ``q`` (clipped, counted as ``q``) and the learning error ``l = round(nu
    e)``. The gains' schedule counts the prior as update 1 (``n_r`` starts at 1). Without
    ``learning`` the normalisers do not adapt: only the gains act (None without gains)."""
    if nf is None or not (learning or nf.gain_shift is not None):
        return None
    if not learning:
        nf = replace(nf, error_shift=None)
    out: list[Instr] = []
    if nf.gain_shift is not None:
        out.append(Instr("mulw", "dg", ("d", "gamma", X.GAIN_FRAC)))
        out.append(Instr("clip", "dg", ("dg", -X.STATE_MAX, X.STATE_MAX)))
    for x, src, s in (("r", "p", nf.gain_shift), ("e", "e", nf.error_shift)):
        if s is None or not learning:
            continue
        n, m, nxt = f"n_{x}", f"m_{x}", f"nxt_{x}"
        out += [Instr("add", n, (n, 1)), Instr("ge", "t", (n, nxt)),
                Instr("mulsr", "h", (m, 1, 1)), Instr("sel", m, ("t", "h", m)),
                Instr("mulsr", "h", (nxt, 2, 0)), Instr("sel", nxt, ("t", "h", nxt)),
                Instr("mulw", "sq", (src, src, 0)), Instr("sub", "dm", ("sq", f"ms_{x}")),
                Instr("mulw", "dm", ("dm", m, s)), Instr("add", f"ms_{x}", (f"ms_{x}", "dm"))]
    if nf.gain_shift is not None:
        lo, hi = X.gain_payload_range(signed, nf.wide_bits)
        if learning:
            out.append(Instr("rsqrt", "gamma", ("ms_r", nf.gain_k, nf.gain_max)))
        out += [Instr("mulw", "q", ("p", "gamma", nf.payload_shift)),
                Instr("clip", "q", ("q", lo, hi))]
    if nf.error_shift is not None:
        out += [Instr("rsqrtf", "nu", ("ms_e", nf.norm_max)),
                Instr("mulsv", "l", ("e", "nu", "nu_s"))]
    return Program(tuple(out), ("d", "p", "e"), {"dg": "q", "q": "q"})


def normaliser_shape(gain: bool, error: bool, learning: bool) -> Program | None:
    """:func:`normaliser_program` of a layer with gains and/or an error normaliser, with
    placeholder constants: what a mapper counts without quantising (None: nothing runs)."""
    if not (gain or error):
        return None
    nf = X.NormaliserFormat(gain_shift=1 if gain else None, error_shift=1 if error else None,
                            q_bits=4, wide_bits=8, payload_shift=1, gain_k=1, gain_max=1,
                            norm_shift=0, norm_max=1.0)
    return normaliser_program(nf, True, learning)


def epoch_program(shift: int) -> Program:
    """The neurons' part of a learning epoch of ``2**shift`` steps (``learning.epoch_steps``,
    :class:`lava_gle.numerics.kernels.LearningEpoch`), batch 1, public operations only.

    Inputs: the step's learning error ``l`` and payload ``p``, and the state: the sums
    ``lsum`` (24-bit, clipped values counted as ``esum``) and ``psum`` and the count ``c``
    of steps summed. Each step adds ``l`` and ``p`` and counts; at the epoch's last step
    (``end`` 1) ``lout`` holds the summed error and ``pout`` the mean payload, ``round(psum
    2**-shift)``, which the learning engine reads, and the sums and count restart."""
    out = (Instr("addsat", "lsum", ("lsum", "l")), Instr("add", "psum", ("psum", "p")),
           Instr("add", "c", ("c", 1)), Instr("ge", "end", ("c", 1 << shift)),
           Instr("mov", "lout", ("lsum",)), Instr("mulsr", "pout", ("psum", 1, shift)),
           Instr("sel", "lsum", ("end", 0, "lsum")), Instr("sel", "psum", ("end", 0, "psum")),
           Instr("sel", "c", ("end", 0, "c")))
    return Program(out, ("l", "p", "lsum", "psum", "c"), {"lsum": "esum"})


def trace_program(shift: int, mant: int = 1, doubled: bool = False) -> Program:
    """The neuron's part of its learning error trace (:func:`lava_gle.numerics.fixed.
    error_trace`), batch 1, public operations only: the trace ``e_q = (mant l + dither) >>
    shift`` of the learning error ``l`` (the step's, or a learning epoch's summed error
    ``lout``), clipped to +-63 (``doubled``, an exact rule: to +-31, then sent doubled;
    clipped values counted as ``trace``, as the engines count them), the postsynaptic
    third factors ``y2 = max(e_q, 0)``, ``y3 = max(-e_q, 0)`` and ``bap``, 1 where ``e_q``
    is non-zero (the neuron sends the bAP ``y0`` then). ``shift <= 0``: an exact left
    shift, no dither.

    Inputs: ``l``, and ``dither`` (``shift`` random bits per neuron: the ``rand``
    instruction's register)."""
    out: list[Instr] = []
    x = "l"
    if mant != 1:
        out.append(Instr("mulsr", "x", ("l", mant, 0)))
        x = "x"
    if shift > 0:
        out += [Instr("rand", "dither", (shift,)), Instr("add", "x", (x, "dither")),
                Instr("shr", "e_q", ("x", shift))]
    else:
        out.append(Instr("mulsr", "e_q", (x, 1, shift)))
    lim = X.ERR_TRACE_MAX // 2 if doubled else X.ERR_TRACE_MAX
    out.append(Instr("clip", "e_q", ("e_q", -lim, lim)))
    if doubled:
        out.append(Instr("add", "e_q", ("e_q", "e_q")))
    out += [Instr("max", "y2", ("e_q", 0)), Instr("sub", "t", (0, "e_q")),
            Instr("max", "y3", ("t", 0)), Instr("abs", "t", ("e_q",)),
            Instr("ge", "bap", ("t", 1))]
    return Program(tuple(out), ("l", "dither"), {"e_q": "trace"})


def trace_shape() -> Program:
    """:func:`trace_program` with placeholder constants and the most instructions (a
    mantissa, an exact rule's doubling): what a mapper counts without quantising."""
    return trace_program(1, 9, True)


def epoch_shape(steps: int) -> Program | None:
    """:func:`epoch_program` with a placeholder shift, for a mapper's counts without
    quantising (None for epochs of one step: nothing runs)."""
    return None if steps == 1 else epoch_program(1)


def normaliser_registers(n_steps: int, nf: X.NormaliserFormat, size: int
                         ) -> dict[str, np.ndarray]:
    """The schedule registers of :func:`normaliser_program` after ``n_steps`` updates of
    the normalisers (``norm_steps``): ``n_x``, ``m_x`` and ``nxt_x`` per normaliser, for
    ``size`` neurons."""
    out = {}
    for x, n, s in (("r", n_steps + 1, nf.gain_shift), ("e", n_steps, nf.error_shift)):
        if s is None:
            continue
        top = n.bit_length() - 1  # floor(log2 n); -1 for n = 0
        out[f"n_{x}"], out[f"nxt_{x}"] = n, 1 << (top + 1)
        out[f"m_{x}"] = 1 << (s - min(top, s)) if n else 1 << (s + 1)
    return {k: np.full(size, v, np.int64) for k, v in out.items()}


def _activation(out: list[Instr], phi: X.FixedActivation) -> None:
    """phi and phi' of ``u_prosp``: the payload ``p`` (saturated) and gate ``g_new``."""
    to_rate = phi.u_bits - phi.rate_bits
    one = X.GATE_ONE
    if phi.kind in X.SEGMENT_PHI:
        _segmented_activation(out, phi)
        return
    out.append(Instr("mulsr", "q", ("u_prosp", 1, to_rate)))
    if phi.kind == "linear":
        out.append(Instr("mov", "g_new", (one,)))
    elif phi.kind == "relu":
        out.append(Instr("max", "q", ("q", 0)))
        out.append(Instr("ge", "t", ("u_prosp", 1)))                 # u > 0
        out.append(Instr("sel", "g_new", ("t", one, 0)))
    else:  # hard_sigmoid
        out.append(Instr("max", "q", ("q", 0)))
        out.append(Instr("sub", "t", (1 << phi.rate_bits, "q")))     # q <= one: select
        out.append(Instr("sel", "q", ("t", "q", 1 << phi.rate_bits)))
        out.append(Instr("ge", "t", ("u_prosp", 0)))
        out.append(Instr("le", "t2", ("u_prosp", 1 << phi.u_bits)))
        out.append(Instr("sel", "t", ("t2", "t", 0)))                # 0 <= u <= 1
        out.append(Instr("sel", "g_new", ("t", one, 0)))
    out.append(Instr("clip", "p", ("q", phi.p_min, phi.p_max)))


def _segments(out: list[Instr], seg: X.Segments, dst: str, c: str) -> None:
    """``dst = seg(a)``: pick the segment of ``a`` by compares and selects (the start into
    ``lo``, coefficient ``j`` into ``<c>j``), then Horner's rule in ``t = a - lo``."""
    d = seg.degree
    out.append(Instr("mov", "lo", (0,)))
    for j in range(d + 1):
        out.append(Instr("mov", f"{c}{j}", (int(seg.coefs[0, j]),)))
    for i in range(1, len(seg.starts)):
        out.append(Instr("ge", "k", ("a", int(seg.starts[i]))))
        out.append(Instr("sel", "lo", ("k", int(seg.starts[i]), "lo")))
        for j in range(d + 1):
            out.append(Instr("sel", f"{c}{j}", ("k", int(seg.coefs[i, j]), f"{c}{j}")))
    out.append(Instr("sub", "t", ("a", "lo")))
    if seg.t_shift:
        out.append(Instr("mulsr", "t", ("t", 1, seg.t_shift)))
    out.append(Instr("mulsr", dst, (f"{c}{d}", "t", seg.shift)))
    for j in range(d - 1, -1, -1):
        out.append(Instr("add", dst, (dst, f"{c}{j}")))
        if j:
            out.append(Instr("mulsr", dst, (dst, "t", seg.shift)))


def _segmented_activation(out: list[Instr], phi: X.FixedActivation) -> None:
    """sigmoid, tanh, softplus as :meth:`lava_gle.numerics.fixed.FixedActivation._segmented`
    computes them: fold to ``a = |u|``, ``f = segments(a)``, unfold by the sign of u."""
    seg = phi.segments
    w = seg.bits
    one = 1 << w
    to_rate = w - phi.rate_bits
    out.append(Instr("abs", "a", ("u_prosp",)))
    _segments(out, seg, "f", "c")
    out.append(Instr("ge", "pos", ("u_prosp", 0)))
    if phi.kind == "sigmoid":
        out.append(Instr("sub", "y", (one, "f")))                  # 1 - f: sigmoid(|u|)
        out.append(Instr("mulsr", "g_new", ("f", "y", 2 * w - X.GATE_BITS)))  # f (1 - f)
        out.append(Instr("sel", "y", ("pos", "y", "f")))
        out.append(Instr("mulsr", "q", ("y", 1, to_rate)))
    elif phi.kind == "tanh":
        out.append(Instr("sub", "y", (one, "f")))                  # tanh(|u|)
        out.append(Instr("mulsr", "t", ("y", "y", 2 * w - X.GATE_BITS)))
        out.append(Instr("sub", "g_new", (X.GATE_ONE, "t")))        # 1 - tanh**2
        out.append(Instr("mulsr", "q", ("y", 1, to_rate)))
        out.append(Instr("sub", "t", (0, "q")))
        out.append(Instr("sel", "q", ("pos", "q", "t")))
    else:  # softplus: max(u, 0) + softplus(-|u|); gate sigmoid(u) from its own segments
        out.append(Instr("max", "y", ("u_prosp", 0)))
        out.append(Instr("mulsr", "y", ("y", 1, phi.u_bits - w)))
        out.append(Instr("add", "y", ("y", "f")))
        out.append(Instr("mulsr", "q", ("y", 1, to_rate)))
        gs = phi.gate_segments
        _segments(out, gs, "fg", "cg")
        out.append(Instr("sub", "t", (1 << gs.bits, "fg")))
        out.append(Instr("sel", "t", ("pos", "t", "fg")))
        out.append(Instr("mulsr", "g_new", ("t", 1, gs.bits - X.GATE_BITS)))
    out.append(Instr("clip", "p", ("q", phi.p_min, phi.p_max)))


def unsupported_ops(program: Program) -> list[str]:
    """Operations of ``program`` that public sources do not show on Loihi 2 neurons."""
    return sorted({i.op for i in program.instrs} - PUBLIC_OPS)


def execute(program: Program, regs: dict[str, np.ndarray]
            ) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Run ``program`` on the int64 input registers ``regs`` (arrays [..., n]); return all
    registers and the saturation counts of the counted variables (``v, e, du, u, u_prosp,
    r`` as :data:`lava_gle.numerics.fixed.NEURON_SAT_VARS`, and those the program counts
    besides, e.g. ``q``)."""
    r = dict(regs)
    counts = dict.fromkeys((*X.NEURON_SAT_VARS, *program.counted.values()), 0)

    def val(a):
        return r[a] if isinstance(a, str) else a

    def count(dst: str, n: int) -> None:
        var = program.counted.get(dst)
        if var is not None:
            counts[var] += n

    for ins in program.instrs:
        a = ins.args
        if ins.op in ("mulsr", "mulw"):
            r[ins.dst] = X.shift_round(val(a[0]) * val(a[1]), a[2])
        elif ins.op == "mulsv":
            r[ins.dst] = X.normalised_error(val(a[0]), (val(a[1]), val(a[2])))
        elif ins.op == "rsqrt":
            r[ins.dst] = X.inverse_rms(val(a[0]), a[1], a[2])
        elif ins.op == "rsqrtf":
            # the shift argument is used only before a first update, which a program
            # never sees
            r[ins.dst], r[ins.dst + "_s"] = X.error_normaliser(val(a[0]), 0, a[1])
        elif ins.op in ("add", "sub"):
            r[ins.dst] = val(a[0]) + val(a[1]) if ins.op == "add" else val(a[0]) - val(a[1])
        elif ins.op == "addsat":
            r[ins.dst], n = X.saturate_state(val(a[0]) + val(a[1]))
            count(ins.dst, n)
        elif ins.op == "clip":
            r[ins.dst], n = X.saturate(val(a[0]), val(a[1]), val(a[2]))
            count(ins.dst, n)
        elif ins.op == "abs":
            r[ins.dst] = np.abs(val(a[0]))
        elif ins.op == "max":
            r[ins.dst] = np.maximum(val(a[0]), val(a[1]))
        elif ins.op == "sel":
            r[ins.dst] = np.where(val(a[0]) > 0, val(a[1]), val(a[2]))
        elif ins.op in ("ge", "le"):
            x, y = val(a[0]), val(a[1])
            r[ins.dst] = ((x >= y) if ins.op == "ge" else (x <= y)).astype(np.int64)
        elif ins.op == "shr":
            r[ins.dst] = val(a[0]) >> a[1]
        elif ins.op == "rand":  # the bits drawn: given as the input register of that name
            if ins.dst not in r:
                raise ValueError(f"rand {ins.dst}: give the random bits as the input "
                                 f"register {ins.dst!r}")
        elif ins.op == "mov":
            r[ins.dst] = np.broadcast_to(np.asarray(val(a[0]), np.int64),
                                         np.shape(r[program.inputs[0]])).copy()
        else:
            raise ValueError(f"unknown instruction {ins.op!r}")
    return r, counts


def program_shape(phi: str, prospective: bool, has_gamma: bool, rate_bits: int = 8,
                  wide: bool = False, u_bits: int = 16,
                  product_bits: int | None = None, bounded_error: bool = False) -> Program:
    """The program of a layer with activation ``phi``, (non-)prospective errors and a
    gamma (or none), with placeholder constants: its instructions, not their operands
    (what a mapper counts without quantising the network). The segments of sigmoid, tanh
    and softplus depend on the payload format: ``rate_bits`` (8 by default, the finest
    8-bit payload: an upper bound for the others), ``wide`` (the output layer's 24-bit
    payloads), ``u_bits`` and the multiplier's ``product_bits`` (None: int64);
    ``bounded_error``: the layer has an ``error_bound`` (a clip; in place of a move
    without prospective errors)."""
    from lava_gle.quantize.activation import make_activation
    act = make_activation(phi, u_bits, rate_bits, phi in ("tanh", "linear"), wide,
                          product_bits)
    one = X.Factor(np.array(1), 0)
    c = X.FixedNeuronConstants(one, one, one, one, one if has_gamma else None, False,
                               prospective, act, product_bits,
                               1 if bounded_error else None)
    return neuron_program(c)


# -- tau_m learning without a divide ---------------------------------------------------

def floor_log2(x) -> np.ndarray:
    """``floor(log2(x))`` of positive integers by a binary search of shifts and compares
    (six steps for 64 bits): what neuron microcode without a count-leading-zeros can do."""
    x = np.asarray(x, np.int64)
    n = np.zeros_like(x)
    for k in (32, 16, 8, 4, 2, 1):
        big = (x >> k) > 0
        x = np.where(big, x >> k, x)
        n = n + np.where(big, k, 0)
    return n


def divide(n, d, bits: int) -> np.ndarray:
    """``floor(n / d)`` of non-negative ``n`` and positive ``d``, saturated at
    ``2**bits - 1``, by restoring division: ``bits`` steps of shift, compare, subtract and
    select, no divide instruction (nothing public shows one on Loihi 2 neurons)."""
    n, d = np.asarray(n, np.int64), np.asarray(d, np.int64)
    r, q = n, np.zeros_like(n)
    for b in range(bits - 1, -1, -1):
        take = r >= (d << b)
        r = np.where(take, r - (d << b), r)
        q = q + np.where(take, 1 << b, 0)
    return np.where(n >= (d << bits), (1 << bits) - 1, q)


def factor_ratio_without_divide(num, den) -> X.Factor:
    """:func:`lava_gle.numerics.fixed.factor_ratio` (what tau_m learning re-derives per
    neuron and step: dt/tau_m, tau_r/tau_m, tau_m/tau_r) in integer operations only: the
    shift from :func:`floor_log2` of numerator and denominator, the 12-bit mantissa by
    :func:`divide` (13 steps). Equal to it for every input (the engines keep the faster
    ``//``: this is the chip's program of the same numbers, 8x slower in NumPy)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.int64), np.asarray(den, np.int64))
    lg = floor_log2(num) - floor_log2(den)
    # floor(log2(num / den)) is lg, or lg - 1 when num's leading bits are below den's
    below = np.where(lg >= 0, num < (den << np.maximum(lg, 0)),
                     (num << np.maximum(-lg, 0)) < den)
    top = int(np.max(lg - below))
    shift = min(max((X.FACTOR_BITS - 1) - top, 0), X.FACTOR_MAX_SHIFT)
    mant = divide((num << shift) + (den >> 1), den, X.FACTOR_BITS + 1)
    mant = np.clip(mant, 1, (1 << X.FACTOR_BITS) - 1)
    return X.Factor(mant if mant.ndim and mant.size > 1 else mant.reshape(()), shift)
