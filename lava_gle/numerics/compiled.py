"""Compiled twins of the hot integer primitives of :mod:`lava_gle.numerics.fixed` (numba).

Each public function here has the signature of its NumPy reference in
:mod:`~lava_gle.numerics.fixed` and returns the very same integers and saturation counts
(``tests/numerics/test_compiled.py`` checks that bit for bit); the reference stays the
definition of the arithmetic. They exist for speed: the learning engine is elementwise per
synapse (a counter hash, products, saturating sums and a rounding per synapse), which NumPy
does in many passes over temporaries and many calls, each with its own overhead; here one
loop does it. The fixed-point kernels reach these functions through
:mod:`lava_gle.numerics.ops`, which also picks the NumPy reference when asked
(``LAVA_GLE_KERNELS=numpy``).

:func:`neuron_step` compiles the activation too (the kinds of
:class:`~lava_gle.numerics.fixed.FixedActivation` it knows: linear, relu, hard_sigmoid and
the segment kinds sigmoid, tanh, softplus); an activation of another kind is called as it
is, after the compiled Euler step.

Integer products and sums are int64 throughout, as in the reference. The reference's
matrix products run through float64 BLAS, exact while every partial sum stays below
2**53 (:func:`~lava_gle.numerics.fixed.int_matmul`), so the int64 sums here equal them.
From :data:`GEMM_BATCH` elements on, the drives, the backward errors and the learning
engine's batch sums (where its floor divides the product exactly) are such matrix
products too (:func:`_int_matmul`): the same integers, faster than one loop per element.

Compiled code is cached on disk (``cache=True``) so later runs and Lava's forked
processes load it instead of compiling; where no cache directory is writable (a
read-only install without ``NUMBA_CACHE_DIR``) numba compiles in memory, once per process.
"""
from __future__ import annotations

import math
import warnings
import weakref

import numba
import numpy as np

from lava_gle.numerics import fixed as X

Array = np.ndarray


_uncached: list[str] = []


def _jit(fn):
    """``numba.njit`` with the on-disk cache, or without it where no cache directory is
    writable (then each process compiles once; warned about once)."""
    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available"
        if not _uncached:
            warnings.warn(f"lava-gle compiled kernels are not cached on disk ({exc}); set "
                          "NUMBA_CACHE_DIR to a writable directory to keep them",
                          RuntimeWarning, stacklevel=2)
        _uncached.append(fn.__name__)
        return numba.njit(nogil=True, error_model="numpy")(fn)


_STATE_MAX = X.STATE_MAX
_GUARD = X.BACKWARD_GUARD_BITS
_GATE_ONE = X.GATE_ONE
_GATE_BITS, _GATE_HALF = X.GATE_BITS, 1 << (X.GATE_BITS - 1)
_ACC_FRAC, _ACC_LO, _ACC_HI = X.ACC_FRAC, X._ACC_LO, X._ACC_HI
_FRAC_MASK = (1 << X.ACC_FRAC) - 1
_W_MIN, _W_MAX, _TRACE_MAX = X.W_MIN, X.W_MAX, X.ERR_TRACE_MAX
_X1_MAX, _F_LO, _F_HI = (1 << X.TRACE_BITS) - 1, -(1 << X.TRACE_BITS), (1 << X.TRACE_BITS) - 1
_GOLDEN, _MIX1, _MIX2, _STEP = X._GOLDEN, X._MIX1, X._MIX2, X._STEP
_U64 = np.uint64
_DITHER_STREAM, _PRE_STREAM = X._DITHER_STREAM, X._PRE_STREAM
#: Below this batch the learning engine's batch sums (|y| <= 2 x 63, |x| <= 128) are exact
#: in float32 (every partial sum below 2**24).
_F32_EXACT_BATCH = (1 << 24) // (2 * X.ERR_TRACE_MAX * (1 << X.TRACE_BITS))


#: Batch size from which the sums run as BLAS matrix products (measured: from 8 elements on
#: the product beats the element loop on 90 x 90 and 120 x 4 weights).
GEMM_BATCH = 8


# -- scalar helpers (inlined by LLVM) ------------------------------------------------------

@_jit
def _shift_round(x, k):
    if k > 0:
        return (x + (1 << (k - 1))) >> k
    if k < 0:
        return x << (-k)
    return x


@_jit
def _shift_floor(x, k):
    if k > 0:
        return x >> k
    if k < 0:
        return x << (-k)
    return x


@_jit
def _scale(x, mant, left, half, right):
    """``Factor.apply`` without a branch: ``round(x * mant * 2**-shift)`` as
    ``(((x mant) << left) + half) >> right`` (:func:`_shift_parts`)."""
    return ((x * mant) << left) + half >> right


def _shift_parts(shift: Array) -> Array:
    """``(left, half, right)`` of :func:`_scale` for Factor shifts ``shift`` [...]:
    [3, ...]."""
    shift = np.asarray(shift, np.int64)
    return np.stack([np.maximum(-shift, 0), np.where(shift > 0, 1 << np.maximum(shift - 1, 0), 0),
                     np.maximum(shift, 0)])


@_jit
def _counter_base(seed, stream, step):
    """``counter_bits``'s base: ``seed G + stream M1 + step S + 1`` modulo 2**64."""
    return (_U64(seed) * _GOLDEN + _U64(stream) * _MIX1 + _U64(step) * _STEP + _U64(1))


@_jit
def _counter(base, index, bits):
    """:func:`~lava_gle.numerics.fixed.counter_bits` of one element (``bits`` >= 1)."""
    z = base + _U64(index)
    z ^= z >> _U64(30)
    z *= _MIX1
    z ^= z >> _U64(27)
    z *= _MIX2
    z ^= z >> _U64(31)
    return np.int64(z >> _U64(64 - bits))


# -- forward drive and backward error ------------------------------------------------------

@_jit
def _clip_count(x, lo, hi):
    """``(min(max(x, lo), hi), 1 if clipped else 0)``."""
    if x > hi:
        return hi, 1
    if x < lo:
        return lo, 1
    return x, 0


@_jit
def _int_matmul(a, b, f32=False):
    """Exact integer ``a @ b`` through float64 BLAS, as
    :func:`~lava_gle.numerics.fixed.int_matmul` (every partial sum below 2**53); through
    float32 BLAS with ``f32`` (the caller knows every partial sum is below 2**24)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if f32:
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.int64)
    return (a.astype(np.float64) @ b.astype(np.float64)).astype(np.int64)


@_jit
def forward_drive(w, w_shift, b, b_shift, p, acc_max):
    """Compiled :func:`lava_gle.numerics.fixed.forward_drive` (same arguments, results)."""
    n, m = w.shape
    p2 = np.ascontiguousarray(p).reshape(-1, m)
    batch = p2.shape[0]
    s = np.empty((batch, n), np.int64)
    gemm = batch >= GEMM_BATCH
    sums = _int_matmul(p2, w.T) if gemm else s
    clipped = acc_clipped = 0
    for i in range(n):
        bias = _shift_floor(b[i], -b_shift)
        for k in range(batch):
            acc = sums[k, i] if gemm else np.int64(0)
            if not gemm:
                for j in range(m):
                    acc += p2[k, j] * w[i, j]
            x, c = _clip_count(_shift_floor(acc, -w_shift), -acc_max, acc_max)
            acc_clipped += c
            s[k, i], c = _clip_count(x + bias, -_STATE_MAX, _STATE_MAX)
            clipped += c
    return s.reshape(p.shape[:-1] + (n,)), clipped, acc_clipped


@_jit
def backward_error(w, e, shift, acc_max):
    """Compiled :func:`lava_gle.numerics.fixed.backward_error` (same arguments, results)."""
    n, m = w.shape
    e2 = np.ascontiguousarray(e).reshape(-1, n)
    batch = e2.shape[0]
    gemm = batch >= GEMM_BATCH
    eps = _int_matmul(e2, w) if gemm else np.zeros((batch, m), np.int64)
    clipped = acc_clipped = 0
    for k in range(batch):
        if not gemm:
            for i in range(n):
                ei = e2[k, i]
                if ei != 0:
                    for j in range(m):
                        eps[k, j] += ei * w[i, j]
        for j in range(m):
            x, c = _clip_count(_shift_floor(eps[k, j], -shift - _GUARD), -acc_max, acc_max)
            acc_clipped += c
            eps[k, j], c = _clip_count(_shift_round(x, _GUARD), -_STATE_MAX, _STATE_MAX)
            clipped += c
    return eps.reshape(e.shape[:-1] + (m,)), clipped, acc_clipped


@_jit
def _output_error(p, y, mant, left, half, right, negative):
    d = np.empty(p.shape, np.int64)
    pf, yf, df = np.ravel(p), np.ravel(y), d.reshape(-1)
    n = mant.shape[0]
    clipped = 0
    for k in range(df.shape[0]):
        x = _scale(yf[k] - pf[k], mant[k % n], left, half, right)
        x = -x if negative else x
        c = _clip_state(x)
        clipped += c != x
        df[k] = c
    return d, clipped


def output_error(p: Array, y: Array, beta: X.Factor, beta_negative: bool) -> tuple[Array, int]:
    """Compiled :func:`lava_gle.numerics.fixed.output_error` (same arguments, results)."""
    mant, (left, half, right) = _packed_factor(beta)
    if p.shape != y.shape:
        p, y = np.broadcast_arrays(p, y)
    return _output_error(p, y, mant, left, half, right, beta_negative)


# -- neuron step ----------------------------------------------------------------------------

@_jit
def _clip_state(x):
    return min(max(x, -_STATE_MAX), _STATE_MAX)


#: Kinds of :class:`~lava_gle.numerics.fixed.FixedActivation` compiled here, by code.
_PHI_KINDS = {"linear": 0, "relu": 1, "hard_sigmoid": 2, "sigmoid": 3, "tanh": 4,
              "softplus": 5}


@_jit
def _segments(a, starts, coefs, shift, t_shift):
    """:meth:`~lava_gle.numerics.fixed.Segments.__call__` of every element of ``a`` [N]
    (>= 0) in passes over all elements, one per breakpoint and per Horner step (loops the
    compiler vectorises): the last segment starting at or below ``a``, then Horner's rule
    in ``t = a - start``. ``shift`` > 0 (:func:`_packed_segments`)."""
    n = a.shape[0]
    d = coefs.shape[1] - 1
    idx = np.zeros(n, np.int64)
    for i in range(1, starts.shape[0]):
        start = starts[i]
        for k in range(n):
            if a[k] >= start:
                idx[k] = i
    t_half = (np.int64(1) << (t_shift - 1)) if t_shift > 0 else np.int64(0)
    half = np.int64(1) << (shift - 1)
    t = np.empty(n, np.int64)
    acc = np.empty(n, np.int64)
    for k in range(n):
        t[k] = (a[k] - starts[idx[k]] + t_half) >> t_shift
        acc[k] = coefs[idx[k], d]
    for j in range(d - 1, -1, -1):
        for k in range(n):
            acc[k] = ((acc[k] * t[k] + half) >> shift) + coefs[idx[k], j]
    return acc


@_jit
def _phi(u, f, fg, kind, to_rate, u_bits, rate_bits, w, g_bits):
    """:meth:`~lava_gle.numerics.fixed.FixedActivation.__call__` of one potential before
    the payload's saturation: (payload, gate). ``f`` and ``fg``: the segments' value
    (``w`` fraction bits) and the softplus gate segments' (``g_bits``) at ``|u|``."""
    if kind == 0:
        return _shift_round(u, to_rate), _GATE_ONE
    if kind == 1:
        return max(_shift_round(u, to_rate), 0), _GATE_ONE if u > 0 else 0
    if kind == 2:
        p = min(max(_shift_round(u, to_rate), 0), np.int64(1) << rate_bits)
        return p, _GATE_ONE if 0 <= u <= (np.int64(1) << u_bits) else 0
    one = np.int64(1) << w
    if kind == 3:  # sigmoid
        y = one - f if u >= 0 else f
        return _shift_round(y, w - rate_bits), _shift_round(f * (one - f), 2 * w - _GATE_BITS)
    if kind == 4:  # tanh
        y = one - f
        q = _shift_round(y, w - rate_bits)
        return q if u >= 0 else -q, _GATE_ONE - _shift_round(y * y, 2 * w - _GATE_BITS)
    # softplus
    y = _shift_round(max(u, 0), u_bits - w) + f
    g = _shift_round(((np.int64(1) << g_bits) - fg) if u >= 0 else fg, g_bits - _GATE_BITS)
    return _shift_round(y, w - rate_bits), g


@_jit
def _phi_all(u, cfg, starts, coefs, g_starts, g_coefs, p, g):
    """phi of every element of ``u`` [N] into ``p`` and ``g`` [N], payloads saturated;
    returns the counted clips. ``cfg``: :func:`_packed_phi`."""
    kind = cfg[0]
    n = u.shape[0]
    f = fg = u  # placeholders for the kinds without segments
    if kind >= 3:
        a = np.abs(u)
        f = _segments(a, starts, coefs, cfg[8], cfg[9])
        if kind == 5:
            fg = _segments(a, g_starts, g_coefs, cfg[11], cfg[12])
    clipped = 0
    for k in range(n):
        raw, g[k] = _phi(u[k], f[k], fg[k], kind, cfg[1], cfg[2], cfg[3], cfg[7], cfg[10])
        p[k] = min(max(raw, cfg[4]), cfg[5])
        clipped += cfg[6] * (p[k] != raw)
    return clipped


@_jit
def _activation(u, cfg, starts, coefs, g_starts, g_coefs):
    """:func:`_phi_all` of ``u`` (any shape): (p, g, clips)."""
    uf = np.ravel(u)
    p, g = np.empty(uf.shape, np.int64), np.empty(uf.shape, np.int64)
    clipped = _phi_all(uf, cfg, starts, coefs, g_starts, g_coefs, p, g)
    return p.reshape(u.shape), g.reshape(u.shape), clipped


def activation(u: Array, phi: X.FixedActivation) -> tuple[Array, Array, int]:
    """Compiled :meth:`lava_gle.numerics.fixed.FixedActivation.__call__` (same results; a
    kind not compiled here is called as it is)."""
    packed = _packed_phi(phi)
    if packed[0][0] < 0:
        return phi(u)
    return _activation(np.asarray(u, np.int64), *packed)


@_jit
def _neuron(u, v, g, s, d, mant, shift, flags, phi_cfg, starts, coefs, g_starts,
            g_coefs):
    """:func:`~lava_gle.numerics.fixed.neuron_step` of arrays [..., n]. ``mant`` [5, n] and
    ``shift`` [3, 5] (:func:`_scale`): dt_m, tau_r_m, dt_r, tau_m_r, gamma; flags:
    prospective, has gamma, gamma negative, the Euler operand's bound ``du_max`` (with
    gamma), the error's bound ``e_max`` (0: none); phi: :func:`_phi` with the constants
    of :func:`_packed_phi` (``phi_cfg[0] < 0``: left to the caller, payload and gate 0).
    Returns (u, u_prosp, p, g, v, e) [6, ..., n] and the clipped values of v, e, du, u,
    u_prosp, r."""
    batch_shape = u.shape
    n = batch_shape[-1]
    u, v, g, s, d = np.ravel(u), np.ravel(v), np.ravel(g), np.ravel(s), np.ravel(d)
    out = np.empty((6, u.shape[0]), np.int64)
    n_v = n_e = n_du = n_u = n_up = n_r = 0
    prospective, has_gamma = flags[0] != 0, flags[1] != 0
    sign = -1 if flags[2] != 0 else 1
    du_max, e_max = flags[3], flags[4]
    # scalars read once (the stores into out could alias the constant arrays)
    l0, l1, l2, l3, l4 = shift[0, 0], shift[0, 1], shift[0, 2], shift[0, 3], shift[0, 4]
    h0, h1, h2, h3, h4 = shift[1, 0], shift[1, 1], shift[1, 2], shift[1, 3], shift[1, 4]
    r0, r1, r2, r3, r4 = shift[2, 0], shift[2, 1], shift[2, 2], shift[2, 3], shift[2, 4]
    for row in range(u.shape[0] // n):
        for i in range(n):
            k = row * n + i
            uk, vk = u[k], v[k]
            x = (g[k] * d[k] + _GATE_HALF) >> _GATE_BITS
            if prospective:
                dv = x - vk
                raw = vk + _scale(dv, mant[2, i], l2, h2, r2)
                vk = _clip_state(raw)
                n_v += vk != raw
                raw = v[k] + _scale(dv, mant[3, i], l3, h3, r3)
                ek = _clip_state(raw)
                if e_max == 0:  # a bound sets e: its clip at the state's limit is moot
                    n_e += ek != raw
            else:
                vk = ek = _clip_state(x)
                n_v += vk != x
            if e_max > 0:
                ek = min(max(ek, -e_max), e_max)
            du = s[k] - uk
            if has_gamma:
                raw = du + sign * _scale(ek, mant[4, i], l4, h4, r4)
                du = min(max(raw, -du_max), du_max)
                n_du += du != raw
            raw = uk + _scale(du, mant[1, i], l1, h1, r1)
            up = _clip_state(raw)
            n_up += up != raw
            raw = uk + _scale(du, mant[0, i], l0, h0, r0)
            uk = _clip_state(raw)
            n_u += uk != raw
            out[0, k], out[1, k], out[4, k], out[5, k] = uk, up, vk, ek
    if phi_cfg[0] >= 0:
        n_r = _phi_all(out[1], phi_cfg, starts, coefs, g_starts, g_coefs, out[2], out[3])
    else:
        out[2], out[3] = 0, 0
    return out.reshape((6,) + batch_shape), n_v, n_e, n_du, n_u, n_up, n_r


_NO_STARTS, _NO_COEFS = np.zeros(1, np.int64), np.zeros((1, 1), np.int64)
#: Packed constants of each FixedNeuronConstants and FixedActivation seen (by identity;
#: dropped with it).
_PACKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _packed_factors(c: X.FixedNeuronConstants, n: int) -> tuple[Array, Array, Array]:
    """``(mant [5, n], shift [3, 5], flags [5])`` of :func:`_neuron` for ``c``."""
    got = _PACKED.get(c)
    if got is not None and got[0].shape[1] == n:
        return got
    zero = X.Factor(np.zeros((), np.int64), 0)
    factors = (c.dt_m, c.tau_r_m, c.dt_r, c.tau_m_r, zero if c.gamma is None else c.gamma)
    mant = np.stack([np.broadcast_to(np.asarray(f.mant, np.int64), (n,)) for f in factors])
    shift = _shift_parts([f.shift for f in factors])
    flags = np.array([c.prospective, c.gamma is not None, c.gamma_negative,
                      0 if c.du_max is None else c.du_max,
                      0 if c.e_max is None else c.e_max], np.int64)
    _PACKED[c] = got = (mant, shift, flags)
    return got


def _packed_factor(f: X.Factor) -> tuple[Array, tuple[int, int, int]]:
    """``(mant [1] or [n], (left, half, right))`` of :func:`_scale` for ``f``."""
    got = _PACKED.get(f)
    if got is None:
        got = _PACKED[f] = (np.atleast_1d(np.asarray(f.mant, np.int64)),
                            tuple(int(x) for x in _shift_parts(f.shift)))
    return got


def _packed_segments(seg: X.Segments | None) -> tuple[list[int], Array, Array]:
    """``([bits, shift, t_shift], starts, coefs)`` of :func:`_segments` (zeros for none)."""
    if seg is None:
        return [0, 0, 0], _NO_STARTS, _NO_COEFS
    return ([seg.bits, seg.shift, seg.t_shift], np.asarray(seg.starts, np.int64),
            np.ascontiguousarray(seg.coefs, np.int64))


def _packed_phi(a: X.FixedActivation) -> tuple[Array, Array, Array, Array, Array]:
    """``(cfg, starts, coefs, gate starts, gate coefs)`` of :func:`_phi`. ``cfg``: kind
    code (-1: a kind not compiled here, the caller applies ``a``), to_rate, u_bits,
    rate_bits, p_min, p_max, whether clips count, then (bits, shift, t_shift) of the
    segments and of the gate segments."""
    got = _PACKED.get(a)
    if got is None:
        kind = _PHI_KINDS.get(getattr(a, "kind", None), -1)
        segs = [x for x in (getattr(a, "segments", None), getattr(a, "gate_segments", None))
                if x is not None]
        if any(x.shift <= 0 or x.t_shift < 0 for x in segs):
            kind = -1  # right shifts only here; the reference handles the rest
        if kind < 0:
            got = (np.full(13, -1, np.int64), _NO_STARTS, _NO_COEFS, _NO_STARTS, _NO_COEFS)
        else:
            seg, starts, coefs = _packed_segments(a.segments)
            g_seg, g_starts, g_coefs = _packed_segments(a.gate_segments)
            cfg = np.array([kind, a.u_bits - a.rate_bits, a.u_bits, a.rate_bits, a.p_min,
                            a.p_max, a.counts_clips, *seg, *g_seg], np.int64)
            got = (cfg, starts, coefs, g_starts, g_coefs)
        _PACKED[a] = got
    return got


def neuron_step(u: Array, v: Array, g: Array, s: Array, d: Array,
                c: X.FixedNeuronConstants) -> tuple[X.FixedNeuronState, tuple[int, ...]]:
    """Compiled :func:`lava_gle.numerics.fixed.neuron_step` (same arguments, results)."""
    shape = u.shape
    phi = _packed_phi(c.phi)
    mant, shift, flags = _packed_factors(c, shape[-1])
    out, *counts = _neuron(u, v, g, s, d, mant, shift, flags, *phi)
    u_new, u_prosp, p, g_new, v_new, e = out
    if phi[0][0] < 0:
        p, g_new, counts[-1] = c.phi(u_prosp)
    state = X.FixedNeuronState(u_new, u_prosp, p, g_new, v_new, e)
    return state, tuple(int(n) for n in counts)


# -- learning engine ------------------------------------------------------------------------

@_jit
def _accumulate(w, x0, pre, e_q, active, mant, s_exp, ovf, half):
    """:func:`~lava_gle.numerics.fixed.accumulate` of the rows ``active`` of ``w`` [n, m]
    (row i's error trace ``e_q[:, i]``): ([len(active), m], clips); ``half``: the rule's
    compensation per active product."""
    batch, m = pre.shape
    acc = np.empty((active.shape[0], m), np.int64)
    clips = 0
    if batch == 1:  # Lava's arithmetic: saturating sums in the rule's order
        for r in range(active.shape[0]):
            i = active[r]
            eq = e_q[0, i]
            y2, y3 = max(eq, 0), max(-eq, 0)
            on = 1 if eq != 0 else 0
            for j in range(m):
                # y2 or y3 is 0, and a zero product adds nothing to a sum within range:
                # the one product of the two, added with saturation, is the rule's order
                mac, c1 = _clip_count((((y2 * pre[0, j] * mant) >> ovf) << s_exp)
                                      + (((y3 * pre[0, j] * -mant) >> ovf) << s_exp),
                                      _ACC_LO, _ACC_HI)
                a, c2 = _clip_count((np.int64(w[i, j]) << _ACC_FRAC) + mac, _ACC_LO, _ACC_HI)
                acc[r, j], c3 = _clip_count(a + on * x0[0, j] * half, _ACC_LO, _ACC_HI)
                clips += c1 + c2 + c3
        return acc, clips
    # the mean of the elements' unsaturated accumulators, rounded, saturated
    lost = mant % (1 << ovf)  # what the floor takes from an odd y x1 product
    if batch >= GEMM_BATCH and lost % (1 << (ovf - 1)) == 0:
        # sum_k floor(mant y_k x_k / 2**ovf) is (mant sum y x - lost sum odd(y) odd(x))
        # / 2**ovf, plus the compensation: matrix products, exact in float32 while
        # B 2**14 < 2**24; those that are zero are skipped (an exact rule's doubled trace
        # has no odd element, and only a compensated rule has a compensation)
        e_act = e_q[:, active]
        f32 = batch < _F32_EXACT_BATCH
        sums = _int_matmul(e_act.T, pre, f32) * mant
        odd = e_act & 1
        if lost != 0 and odd.any():
            sums -= _int_matmul(odd.T, pre & 1, f32) * lost
        if half != 0:
            sums_comp = _int_matmul((e_act != 0).T, x0, f32) * half
        else:
            sums_comp = np.zeros((1, 1), np.int64)
        for r in range(active.shape[0]):
            i = active[r]
            for j in range(m):
                a = (batch * (np.int64(w[i, j]) << _ACC_FRAC)
                     + ((sums[r, j] >> ovf) << s_exp))
                if half != 0:
                    a += sums_comp[r, j]
                acc[r, j], c = _clip_count((a + batch // 2) // batch, _ACC_LO, _ACC_HI)
                clips += c
        return acc, clips
    for r in range(active.shape[0]):
        i = active[r]
        for j in range(m):
            acc[r, j] = batch * (np.int64(w[i, j]) << _ACC_FRAC)
        for k in range(batch):
            eq = e_q[k, i]
            if eq == 0:
                continue
            y2, y3 = max(eq, 0), max(-eq, 0)
            for j in range(m):
                acc[r, j] += ((((y2 * pre[k, j] * mant) >> ovf) << s_exp)
                              + (((y3 * pre[k, j] * -mant) >> ovf) << s_exp)
                              + x0[k, j] * half)
        for j in range(m):
            acc[r, j], c = _clip_count((acc[r, j] + batch // 2) // batch, _ACC_LO, _ACC_HI)
            clips += c
    return acc, clips


@_jit
def _round_into(w, acc, active, base, per_synapse):
    """:func:`~lava_gle.numerics.fixed.round_accumulator` of the rows ``active``, written
    into ``w``; the 7-bit numbers from the counter hash ``base`` (per synapse: element
    ``i m + j``; shared: element 0). Returns the number of clipped weights."""
    m = w.shape[1]
    shared = _counter(base, 0, _ACC_FRAC)
    clipped = 0
    for r in range(active.shape[0]):
        i = active[r]
        for j in range(m):
            rand = _counter(base, i * m + j, _ACC_FRAC) if per_synapse else shared
            a = acc[r, j]
            x = (a >> _ACC_FRAC) + (1 if rand < (a & _FRAC_MASK) else 0)
            if x > _W_MAX or x < _W_MIN:
                clipped += 1
                x = min(max(x, _W_MIN), _W_MAX)
            w[i, j] = x
    return clipped


@_jit
def _learn(w, b, p, e, seed, layer, step, cfg, w_stream, w_step, active_mask):
    """The whole of :func:`~lava_gle.numerics.fixed.learn_projection` (cfg: see
    :func:`_learn_config`; the weights' rounding numbers from the counter hash of
    ``(seed, w_stream, w_step)``; ``active_mask`` bool [n] set to the rows whose error
    trace is non-zero). Returns (trace clips, weight clips, bias clips, accumulator
    clips)."""
    (trace_shift, pre_signed, per_synapse, mant, s_exp, ovf, f_signed,
     has_bias, b_mant, b_s_exp, b_ovf, b_f_signed) = (cfg[0], cfg[1] != 0, cfg[2] != 0, cfg[3],
                                                      cfg[4], cfg[5], cfg[6] != 0, cfg[7] != 0,
                                                      cfg[8], cfg[9], cfg[10], cfg[11] != 0)
    pre_shift, comp, b_comp = cfg[12], cfg[13], cfg[14]
    trace_max = _TRACE_MAX // 2 if cfg[15] != 0 else _TRACE_MAX  # exact: doubled trace
    trace_mul = 2 if cfg[15] != 0 else 1
    trace_mant = cfg[18]
    n, m = w.shape
    p = np.ascontiguousarray(p).reshape(-1, m)
    e = np.ascontiguousarray(e).reshape(-1, n)
    batch = e.shape[0]
    if p.shape[0] != batch:
        raise ValueError("learn_projection: payloads and errors differ in batch")
    # error trace, stochastically rounded with one dither per neuron
    e_q = np.empty((batch, n), np.int64)
    n_trace = 0
    active_mask[:] = False
    dither_base = _counter_base(seed, _DITHER_STREAM + layer, step)
    for i in range(n):
        dither = _counter(dither_base, i, trace_shift) if trace_shift > 0 else 0
        for k in range(batch):
            q = _shift_floor(trace_mant * e[k, i] + dither, trace_shift)
            if q > trace_max or q < -trace_max:
                n_trace += 1
                q = min(max(q, -trace_max), trace_max)
            q *= trace_mul
            e_q[k, i] = q
            if q != 0:
                active_mask[i] = True
    active = np.flatnonzero(active_mask)
    if active.shape[0] == 0:
        return n_trace, 0, 0, 0
    # presynaptic traces as the learning engine reads the payloads (or the coarser,
    # dithered learning payloads when pre_shift > 0)
    x0 = np.empty((batch, m), np.int64)
    pre = np.empty((batch, m), np.int64)
    pre_base = _counter_base(seed, _PRE_STREAM + layer, step)
    for j in range(m):
        pre_dither = _counter(pre_base, j, pre_shift + 1) if pre_shift > 0 else 0
        for k in range(batch):
            if pre_shift > 0:
                x1 = ((p[k, j] + pre_dither) >> (pre_shift + 1)) + (64 if pre_signed else 0)
                on = 1 if x1 != 0 else 0
            else:
                q = p[k, j] + 128 if pre_signed else p[k, j]
                half = q >> 1
                x1 = min(half + (q & half & 1), _X1_MAX)  # round half to even, as np.round
                on = 1 if q != 0 else 0
            x0[k, j] = on
            pre[k, j] = on * min(max(x1 - 64 if f_signed else x1, _F_LO), _F_HI)
    acc, n_acc = _accumulate(w, x0, pre, e_q, active, mant, s_exp, ovf, comp)
    n_w = _round_into(w, acc, active, _counter_base(seed, w_stream, w_step), per_synapse)
    n_b = 0
    if has_bias:
        b_x1 = cfg[17]
        bias_pre = np.full((batch, 1), b_x1 - 64 if b_f_signed else b_x1, np.int64)
        wb = b.reshape(n, 1)
        acc, n_bacc = _accumulate(wb, np.ones((batch, 1), np.int64), bias_pre, e_q,
                                  active, b_mant, b_s_exp, b_ovf, b_comp)
        n_b = _round_into(wb, acc, active, _counter_base(seed, 2 * layer + 1, step),
                          per_synapse)
        n_acc += n_bacc
    return n_trace, n_w, n_b, n_acc


_CONFIGS: dict = {}
#: The biases of a projection without them (``b`` None; read only under a bias rule).
_NO_BIAS = np.zeros(0, np.int64)


def _learn_config(trace_shift: int, pre_signed: bool, per_synapse: bool,
                  rule: X.LearningRuleConstants,
                  bias_rule: X.BiasRule | None, pre_shift: int, trace_mant: int) -> Array:
    """The constants of :func:`_learn` as one int64 array (cached: rules are values)."""
    key = (trace_shift, pre_signed, per_synapse, rule, bias_rule, pre_shift, trace_mant)
    cfg = _CONFIGS.get(key)
    if cfg is None:
        br = rule if bias_rule is None else bias_rule
        cfg = np.array([trace_shift, pre_signed, per_synapse,
                        rule.mant, rule.s_exp, rule.overflow_shift, rule.pre_signed,
                        bias_rule is not None,
                        br.mant, br.s_exp, br.overflow_shift, br.pre_signed, pre_shift,
                        rule.compensation(), br.compensation(), rule.exact, br.exact,
                        0 if bias_rule is None else bias_rule.x1, trace_mant],
                       np.int64)
        _CONFIGS[key] = cfg
    return cfg


@_jit
def carry_tags(w, tag, bits):
    """Compiled :func:`lava_gle.numerics.fixed.carry_tags` (``w``, ``tag`` in place; the
    weights clipped)."""
    wf, tf = w.reshape(-1), tag.reshape(-1)
    half, clipped = 1 << (bits - 1), 0
    for i in range(wf.size):
        c = (tf[i] + half) >> bits
        if c != 0:
            tf[i] -= c << bits
            wf[i], n = _clip_count(wf[i] + c, _W_MIN, _W_MAX)
            clipped += n
    return clipped


@_jit
def transpose_drift(w, back, rows, row_sq):
    """Compiled :func:`lava_gle.numerics.fixed.transpose_drift` (``row_sq`` in place)."""
    largest, change = 0, 0
    for r in rows:
        sq = 0
        for j in range(w.shape[1]):
            d = np.int64(back[r, j]) - np.int64(w[r, j])
            sq += d * d
            largest = max(largest, abs(d))
        change += sq - row_sq[r]
        row_sq[r] = sq
    return largest, change


def learn_projection(w: Array, b: Array | None, p: Array, e: Array, trace_shift: int,
                     pre_signed: bool, rule: X.LearningRuleConstants,
                     bias_rule: X.BiasRule | None, seed: int, layer: int,
                     step: int, per_synapse: bool, pre_shift: int = 0,
                     rounding: tuple[int, int] | None = None,
                     active: Array | None = None,
                     trace_mant: int = 1) -> tuple[int, int, int, int]:
    """Compiled :func:`lava_gle.numerics.fixed.learn_projection` (same arguments, results;
    ``w``, ``b`` and ``active`` updated in place)."""
    cfg = _learn_config(trace_shift, pre_signed, per_synapse, rule, bias_rule, pre_shift,
                        trace_mant)
    w_stream, w_step = (2 * layer, step) if rounding is None else rounding
    if active is None:
        active = np.empty(w.shape[0], np.bool_)
    return _learn(w, _NO_BIAS if b is None else b, p, e, seed, layer, step, cfg,
                  w_stream, w_step, active)


# -- neuron-local normalisers ------------------------------------------------------------

@_jit
def update_mean_square(ms, x, shift):
    """Compiled :func:`lava_gle.numerics.fixed.update_mean_square` (``ms`` in place)."""
    n = ms.shape[0]
    x2 = np.ascontiguousarray(x).reshape(-1, n)
    rows = x2.shape[0]
    for i in range(n):
        acc = np.int64(0)
        for k in range(rows):
            acc += x2[k, i] * x2[k, i]
        if x.ndim > 1:
            acc //= rows
        ms[i] += _shift_round(acc - ms[i], shift)


@_jit
def inverse_rms(ms, k, limit):
    """Compiled :func:`lava_gle.numerics.fixed.inverse_rms` (float64 square root and
    division, correctly rounded as NumPy's: the same integers)."""
    out = np.empty(ms.shape[0], np.int64)
    top, cap = 2.0 ** k, np.float64(limit)
    for i in range(ms.shape[0]):
        y = cap if ms[i] == 0 else min(np.floor(top / np.sqrt(np.float64(ms[i])) + 0.5), cap)
        out[i] = np.int64(y)
    return out


@_jit
def _error_normaliser(ms, limit):
    n = ms.shape[0]
    m, s = np.empty(n, np.int64), np.empty(n, np.int64)
    top, cap = 2.0 ** X.NORM_FRAC, np.float64(limit)
    for i in range(n):
        y = cap if ms[i] == 0 else min(top / np.sqrt(np.float64(ms[i])), cap)
        s[i] = X.NU_BITS - math.frexp(y)[1]
        m[i] = np.int64(math.floor(math.ldexp(y, s[i]) + 0.5))
    return m, s


def error_normaliser(ms: Array | None, norm_shift: int, limit: float) -> tuple[Array, Array]:
    """Compiled :func:`lava_gle.numerics.fixed.error_normaliser` (the reference itself
    before the first update, ``ms`` None)."""
    if ms is None:
        return X.error_normaliser(None, norm_shift, limit)
    return _error_normaliser(ms, limit)


@_jit
def _normalised_error(e, m, s):
    n = e.shape[-1]
    e2 = np.ascontiguousarray(e).reshape(-1, n)
    out = np.empty_like(e2)
    one = m.shape[0] == 1
    for i in range(n):
        j = 0 if one else i
        for k in range(e2.shape[0]):
            v = e2[k, i] * m[j]
            out[k, i] = (v + (np.int64(1) << (s[j] - 1))) >> s[j] if s[j] > 0 else v << -s[j]
    return out.reshape(e.shape)


def normalised_error(e: Array, nu: tuple[Array, Array]) -> Array:
    """Compiled :func:`lava_gle.numerics.fixed.normalised_error` (same arguments, result)."""
    return _normalised_error(e, nu[0], nu[1])


@_jit
def _gained(x, gamma, shift, lo, hi):
    n = x.shape[-1]
    x2 = np.ascontiguousarray(x).reshape(-1, n)
    out = np.empty_like(x2)
    clipped = 0
    for k in range(x2.shape[0]):
        for i in range(n):
            out[k, i], c = _clip_count(_shift_round(gamma[i] * x2[k, i], shift), lo, hi)
            clipped += c
    return out.reshape(x.shape), clipped


def gain_payload(p: Array, gamma: Array, shift: int, signed: bool,
                 wide_bits: int = 0) -> tuple[Array, int]:
    """Compiled :func:`lava_gle.numerics.fixed.gain_payload` (same arguments, results)."""
    return _gained(p, gamma, shift, *X.gain_payload_range(signed, wide_bits))


def gain_error(d: Array, gamma: Array, shift: int) -> tuple[Array, int]:
    """Compiled :func:`lava_gle.numerics.fixed.gain_error` (same arguments, results)."""
    return _gained(d, gamma, shift, -_STATE_MAX, _STATE_MAX)
