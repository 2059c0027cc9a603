"""No-jump evolution of a small non-normal generator in its eigenmodes, its jumps, in modes.

For A = -i H_eff = V diag(mu) V^-1 (columns of V of unit norm, modes sorted from the slowest
decay, -Re mu ascending) a state with mode amplitudes c at t0 is, at t0 + s,

    psi(s) = sum_i c_i e^{mu_i s} v_i,   ||psi(s)||^2 = sum_ij conj(y_i) G_ij y_j,
    y_i = c_i e^{mu_i s},   G = V^dag V (the Gram matrix: V is not unitary),

and d||psi||^2/ds = sum_ij conj(y_i) G_ij y_j (conj mu_i + mu_j), exactly; no time step.  A
mode is dropped once the modes after it together weigh sum_i |c_i| e^{Re mu_i s} <=
MODE_TOL sqrt(u) (u the no-jump threshold, below which ||psi||^2 never goes before the jump):
the state keeps relative error MODE_TOL, and since the bound only falls with s, the modes in use
shrink to the few slow ones soon after a jump, and so does the cost, O(n^2) per norm for n modes
in use.  The jump is where ||psi(s)||^2 = u: Newton's method on log ||psi||^2 kept inside a
bracket (bisection when it leaves it), to relative JUMP_TOL.

A jump L psi stays in modes too: its amplitudes are J y with J = V^-1 L V (``run``), so a
trajectory between losses and measurements never leaves compiled code.

A has sectors that it never mixes (for spins: the parity of the number of spins up, which Sigma
flips): entries and modes bounds[b] .. bounds[b + 1] form sector b, and each matrix (VT = V^T,
GT = G^T, WT = (V^-1)^T) is stored as its sectors' square blocks one after the other in a flat
array, block b from offsets[b], row-major.  The jump channels map sector b to sector 1 - b:
channel q's JT = J^T from sector b is the (n_b x n_{1-b}) block at jumps[q, b], row-major.
The transposes make every product a sum of rows (``_axpy``), which vectorises.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .fpenv import flush_subnormals, restore_fp_state
from .kernels import FAST
from .streams import _uniform

#: Relative weight of the modes dropped (module docstring).
MODE_TOL = 1e-13
#: ||psi(s)||^2 = u is solved to |||psi||^2 - u| <= JUMP_TOL u, or to the last bit of s.
JUMP_TOL = 1e-12
#: Residual below which a Newton step that converges quadratically is trusted (``_reach``).
SURE_RESIDUAL = 1e-6
#: Root iterations before the bracket's midpoint is taken as the jump (never reached in tests).
MAX_ITERATIONS = 200


@nb.njit(cache=True)
def _in_use(c, mu, bounds, s, bound, n):
    """n[b]: the leading modes of sector b kept at s; the modes dropped in all sectors weigh at
    most ``bound`` together."""
    share = bound / (bounds.size - 1)
    for b in range(bounds.size - 1):
        lo, count, tail = bounds[b], bounds[b + 1] - bounds[b], 0.0
        while count > 0:
            weight = abs(c[lo + count - 1])
            if weight > 0.0:  # (an empty sector costs no exponentials)
                weight *= math.exp(mu[lo + count - 1].real * s)
            if tail + weight > share:
                break
            tail += weight
            count -= 1
        n[b] = count


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _axpy(out, lo, M, start, a, count):
    """out[lo + i] += M[start + i] a for 0 <= i < count.  Unsigned indices spare Numba's
    negative-index wrap-around, so the loop vectorises; each entry still sums in the callers'
    order, so the bits do not depend on the vector width."""
    o, m = np.uint64(lo), np.uint64(start)
    for i in range(np.uint64(count)):
        out[o + i] += M[m + i] * a


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _axpy2(out, out2, lo, M, start, a, a2, count):
    """``_axpy`` of a and of a2 with the same M (read once) into out and out2."""
    o, m = np.uint64(lo), np.uint64(start)
    for i in range(np.uint64(count)):
        x = M[m + i]
        out[o + i] += x * a
        out2[o + i] += x * a2


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _axpy_pair(out, lo, M, start, stride, a, b, count):
    """``_axpy`` of rows start and start + stride of M with a, then b, in one pass (out read
    and written once for two products)."""
    o, m, m2 = np.uint64(lo), np.uint64(start), np.uint64(start + stride)
    for i in range(np.uint64(count)):
        x = out[o + i] + M[m + i] * a
        out[o + i] = x + M[m2 + i] * b


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _axpy2_pair(out, out2, lo, M, start, stride, a, a2, b, b2, count):
    """``_axpy2`` of two rows (``_axpy_pair``)."""
    o, m, m2 = np.uint64(lo), np.uint64(start), np.uint64(start + stride)
    for i in range(np.uint64(count)):
        x, x2 = M[m + i], M[m2 + i]
        first = out[o + i] + x * a
        out[o + i] = first + x2 * b
        second = out2[o + i] + x * a2
        out2[o + i] = second + x2 * b2


@nb.njit(cache=True, fastmath=FAST)
def _norm2(c, mu, GT, bounds, offsets, n, s, y, scratch, slope_too=True):
    """(||psi(s)||^2, its derivative unless not ``slope_too``) over the modes in use, with y =
    c e^{mu s} there.  The sectors are orthogonal and G is Hermitian: with t_i = sum_{j>i}
    G_ij y_j and h_i the same of mu_j y_j (columns of G's upper triangle: rows of G^T),
    ||psi||^2 = sum_i |y_i|^2 G_ii + 2 Re conj(y_i) t_i and the derivative sum_i 2 |y_i|^2
    G_ii Re mu_i + 2 Re conj(y_i) (conj(mu_i) t_i + h_i).  scratch: separate arrays (a 2-D
    array's rows might overlap for all LLVM knows, and then it does not vectorise) for mu y,
    t, h and ``_jump``'s sums."""
    ym, t, h = scratch[0], scratch[1], scratch[2]
    norm, slope = 0.0, 0.0
    for b in range(bounds.size - 1):
        lo, m, size = bounds[b], n[b], bounds[b + 1] - bounds[b]
        for i in range(lo, lo + m):
            y[i] = c[i] * np.exp(mu[i] * s)
            ym[i], t[i], h[i] = mu[i] * y[i], 0j, 0j
        for j in range(1, m, 2):  # columns j and j + 1 together (j + 1 has one entry more)
            row = offsets[b] + j * size
            if j + 1 == m:
                if slope_too:
                    _axpy2(t, h, lo, GT, row, y[lo + j], ym[lo + j], j)
                else:
                    _axpy(t, lo, GT, row, y[lo + j], j)
                continue
            x = GT[row + size + j]
            if slope_too:
                _axpy2_pair(t, h, lo, GT, row, size, y[lo + j], ym[lo + j], y[lo + j + 1],
                            ym[lo + j + 1], j)
                h[lo + j] += x * ym[lo + j + 1]
            else:
                _axpy_pair(t, lo, GT, row, size, y[lo + j], y[lo + j + 1], j)
            t[lo + j] += x * y[lo + j + 1]
        for i in range(lo, lo + m):
            yi, weight = np.conj(y[i]), abs(y[i]) ** 2
            gii = GT[offsets[b] + (i - lo) * (size + 1)].real
            norm += weight * gii + 2.0 * (yi * t[i]).real
            if slope_too:
                slope += 2.0 * (weight * gii * mu[i].real +
                                (yi * (np.conj(mu[i]) * t[i] + h[i])).real)
    return norm, slope


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def expand(VT, bounds, offsets, y, n, out):
    """out = sum of y_i v_i over the modes in use (v_i = row i of VT within its sector)."""
    out[:] = 0.0
    for b in range(bounds.size - 1):
        lo, size = bounds[b], bounds[b + 1] - bounds[b]
        for i in range(lo, lo + n[b] - 1, 2):
            _axpy_pair(out, lo, VT, offsets[b] + (i - lo) * size, size, y[i], y[i + 1], size)
        if n[b] % 2:
            i = lo + n[b] - 1
            _axpy(out, lo, VT, offsets[b] + (i - lo) * size, y[i], size)


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def amplitudes(WT, bounds, offsets, psi, c):
    """c = V^-1 psi sector by sector (WT = (V^-1)^T: c gathers its columns in order; no BLAS,
    so the same bits everywhere)."""
    c[:] = 0.0
    for b in range(bounds.size - 1):
        lo, size = bounds[b], bounds[b + 1] - bounds[b]
        for q in range(size):
            if psi[lo + q] != 0:
                _axpy(c, lo, WT, offsets[b] + q * size, psi[lo + q], size)


@nb.njit(cache=True, inline="always")
def _at(c, mu, bounds, s, bound, n, y):
    """The state at s without its norm: n the modes in use there (``_in_use``), y = c e^{mu s}
    over them."""
    _in_use(c, mu, bounds, s, bound, n)
    for b in range(bounds.size - 1):
        for i in range(bounds[b], bounds[b] + n[b]):
            y[i] = c[i] * np.exp(mu[i] * s)


@nb.njit(cache=True)
def _reach(c, mu, GT, bounds, offsets, a, b, u, bound, y, scratch, n, known):
    """Evolve from a towards b: (b, False) if ||psi||^2 stays >= u up to b, else (s, True) with
    ||psi(s)||^2 = u; y holds the amplitudes at the returned s, n the modes in use.  ``known``
    = [s, ||psi(s)||^2, its derivative] where known (set here at b when b is reached).

    Newton's method on log ||psi||^2 from a, each step from the latest point, kept inside the
    bracket (bisection when a step leaves it); ||psi(b)||^2 is looked at only when a step would
    pass b.  Where a Newton step has brought the residual |log ||psi||^2 - log u| to r_k <=
    SURE_RESIDUAL and its quadratic convergence (r_k = K r_{k-1}^2) predicts the next below
    JUMP_TOL / 100, that next step is taken without looking (y computed there, O(n)).  Each
    point is looked at over the modes in use there (``_in_use``: fewer the later)."""
    if b <= a:
        _at(c, mu, bounds, a, bound, n, y)
        return a, False
    _in_use(c, mu, bounds, a, bound, n)
    if known[0] == a:
        norm, slope = known[1], known[2]
    else:
        norm, slope = _norm2(c, mu, GT, bounds, offsets, n, a, y, scratch)
    target = math.log(u)
    below_b = False  # ||psi(b)||^2 < u known
    residual, x = abs(math.log(norm) - target), a  # x: the latest point looked at
    for _ in range(MAX_ITERATIONS):
        s = x - (math.log(norm) - target) * norm / slope if slope < 0.0 else b
        if s >= b and not below_b:
            _in_use(c, mu, bounds, b, bound, n)
            norm_b, slope_b = _norm2(c, mu, GT, bounds, offsets, n, b, y, scratch)
            if norm_b >= u:
                known[0], known[1], known[2] = b, norm_b, slope_b
                return b, False
            below_b = True
        newton = a < s < b
        if not newton:
            s = 0.5 * (a + b)
            if not a < s < b:  # the bracket is two neighbouring numbers
                _at(c, mu, bounds, s, bound, n, y)
                return s, True
        _in_use(c, mu, bounds, s, bound, n)
        norm, slope, x = *_norm2(c, mu, GT, bounds, offsets, n, s, y, scratch), s
        if abs(norm - u) <= JUMP_TOL * u:
            return s, True
        if norm >= u:
            a = s
        else:
            b, below_b = s, True
        previous, residual = residual, abs(math.log(norm) - target)
        if newton and residual <= SURE_RESIDUAL and slope < 0.0 and \
                residual ** 3 <= 0.01 * JUMP_TOL * previous ** 2:
            step = s - (math.log(norm) - target) * norm / slope
            if a < step < b:
                _at(c, mu, bounds, step, bound, n, y)
                return step, True
    s = 0.5 * (a + b)
    _at(c, mu, bounds, s, bound, n, y)
    return s, True


@nb.njit(cache=True, nogil=True)
def advance_through(mu, VT, GT, bounds, offsets, c, t0, s, u, times, first, last, X, y,
                    scratch, n, known):
    """Evolve the amplitudes c (set at time t0; the trajectory is at t0 + s) through
    times[first:last], stopping where ||psi||^2 reaches u (``_reach``).  X[i] gets the state
    at times[first + i].  Returns (k, s, jumped): k the first time not reached, s the stop (the
    jump, or times[last - 1] - t0), with n[b] the modes of sector b in use there and y their
    amplitudes c e^{mu s}."""
    bound = MODE_TOL * math.sqrt(u)
    k = first
    while k < last:
        s, jumped = _reach(c, mu, GT, bounds, offsets, s, max(times[k] - t0, s), u, bound, y,
                           scratch, n, known)
        if jumped:
            return k, s, True
        expand(VT, bounds, offsets, y, n, X[k - first])
        k += 1
    _at(c, mu, bounds, s, bound, n, y)
    return last, s, False


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def _jump(mu, GT, JT, jumps, bounds, offsets, y, n, c, known, rng, work, scratch):
    """The jump from the state y (modes in use n): each channel's amplitudes J y into work[q]
    (J's columns: rows of JT) and ||L_q psi||^2, the channel drawn with these weights from rng
    (as ``engines.pick``), c its normalised amplitudes and known = [0, 1, derivative of
    ||psi||^2] there.  Returns q."""
    channels = jumps.shape[0]
    weights = np.empty(channels)
    slopes = np.empty(channels)
    out, image = scratch[3], np.empty_like(n)  # image: the modes of the sectors jumped into
    for b in range(bounds.size - 1):
        image[1 - b] = bounds[2 - b] - bounds[1 - b] if n[b] > 0 else 0
    for q in range(channels):
        out[:] = 0.0
        for b in range(bounds.size - 1):
            lo, size = bounds[1 - b], bounds[2 - b] - bounds[1 - b]  # L_q's image of sector b
            start, y0 = jumps[q, b], bounds[b]
            for j in range(0, n[b] - 1, 2):
                _axpy_pair(out, lo, JT, start + j * size, size, y[y0 + j], y[y0 + j + 1], size)
            if n[b] % 2:
                j = n[b] - 1
                _axpy(out, lo, JT, start + j * size, y[y0 + j], size)
        work[q] = out
        weights[q], slopes[q] = _norm2(out, mu, GT, bounds, offsets, image, 0.0, c, scratch)
    cumulative = np.cumsum(weights)
    chosen = min(np.searchsorted(cumulative, _uniform(rng) * cumulative[-1]), channels - 1)
    if not 0.0 < weights[chosen] < math.inf:  # else the chain would jump forever in place
        raise FloatingPointError("modes._jump: a jump to a state of zero or non-finite norm")
    scale = 1.0 / math.sqrt(weights[chosen])
    for i in range(c.size):
        c[i] = work[chosen, i] * scale
    known[0], known[1], known[2] = 0.0, 1.0, slopes[chosen] / weights[chosen]
    return chosen


@nb.njit(cache=True, nogil=True)
def run(mu, VT, GT, JT, jumps, bounds, offsets, c, clock, times, first, last, X, y, scratch,
        n, known, rng, work, event_t, event_q):
    """``advance_through`` times[first:last] with the jumps on the way (``_jump``, then a fresh
    threshold u from rng), clock = [t0, s, u] kept up to date: event_t, event_q get each jump's
    time and channel.  Returns (k, jumps made): k = last unless event_t filled up first."""
    fp_state = flush_subnormals()
    count, k = 0, first
    while k < last and count < event_t.size:
        k, s, jumped = advance_through(mu, VT, GT, bounds, offsets, c, clock[0], clock[1],
                                       clock[2], times, k, last, X[k - first:], y, scratch,
                                       n, known)
        clock[1] = s
        if jumped:
            clock[0] += s
            event_t[count] = clock[0]
            event_q[count] = _jump(mu, GT, JT, jumps, bounds, offsets, y, n, c, known, rng,
                                   work, scratch)
            clock[1], clock[2] = 0.0, _uniform(rng)
            count += 1
    restore_fp_state(fp_state)
    return k, count
