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
============================  ============================================  ===============

sigmoid, tanh and softplus are piecewise polynomials (:class:`lava_gle.numerics.fixed.
Segments`): ``abs`` folds the potential, a chain of compares and selects picks the
segment's start and coefficients (constants of the program), Horner's rule evaluates it
(``mulsr`` and ``add``), and selects unfold it by the sign. No table is read. tau_m
learning's division has no public counterpart either; :func:`factor_ratio_without_divide`
computes its factors without one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lava_gle.numerics import fixed as X


#: Operations with a public counterpart in Loihi 2 neuron microcode.
PUBLIC_OPS = frozenset({"mulsr", "add", "sub", "addsat", "abs", "clip", "max", "sel", "ge",
                        "le", "mov"})


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
    r`` as :data:`lava_gle.numerics.fixed.NEURON_SAT_VARS`)."""
    r = dict(regs)
    counts = dict.fromkeys(X.NEURON_SAT_VARS, 0)

    def val(a):
        return r[a] if isinstance(a, str) else a

    def count(dst: str, n: int) -> None:
        var = program.counted.get(dst)
        if var is not None:
            counts[var] += n

    for ins in program.instrs:
        a = ins.args
        if ins.op == "mulsr":
            r[ins.dst] = X.shift_round(val(a[0]) * val(a[1]), a[2])
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
        elif ins.op == "mov":
            r[ins.dst] = np.broadcast_to(np.asarray(val(a[0]), np.int64),
                                         np.shape(r["u"])).copy()
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
