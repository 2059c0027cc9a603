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
G, W = V^-1) is stored as its sectors' square blocks one after the other in a flat array,
block b from offsets[b], row-major.  The jump channels map sector b to sector 1 - b: channel q's
J from sector b is the (n_{1-b} x n_b) block at jumps[q, b], row-major.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .kernels import FAST
from .streams import _uniform

#: Relative weight of the modes dropped (module docstring).
MODE_TOL = 1e-13
#: ||psi(s)||^2 = u is solved to |||psi||^2 - u| <= JUMP_TOL u, or to the last bit of s.
JUMP_TOL = 1e-12
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
            weight = abs(c[lo + count - 1]) * math.exp(mu[lo + count - 1].real * s)
            if tail + weight > share:
                break
            tail += weight
            count -= 1
        n[b] = count


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _row(M, start, y, lo, hi):
    """sum_{lo <= j < hi} M[start + j - lo] y_j in four interleaved partial sums added in a
    fixed order (independent chains run in parallel; the same bits on every CPU)."""
    s0, s1, s2, s3 = 0j, 0j, 0j, 0j
    j, shift = lo, start - lo
    while j + 4 <= hi:
        s0 += M[shift + j] * y[j]
        s1 += M[shift + j + 1] * y[j + 1]
        s2 += M[shift + j + 2] * y[j + 2]
        s3 += M[shift + j + 3] * y[j + 3]
        j += 4
    while j < hi:
        s0 += M[shift + j] * y[j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _rows(G, start, y, ym, lo, hi):
    """(sum_j G[start + j - lo] y_j, the same with ym) over lo <= j < hi, each in two
    interleaved partial sums added in a fixed order."""
    g0, g1, h0, h1 = 0j, 0j, 0j, 0j
    j, shift = lo, start - lo
    while j + 2 <= hi:
        g0 += G[shift + j] * y[j]
        h0 += G[shift + j] * ym[j]
        g1 += G[shift + j + 1] * y[j + 1]
        h1 += G[shift + j + 1] * ym[j + 1]
        j += 2
    if j < hi:
        g0 += G[shift + j] * y[j]
        h0 += G[shift + j] * ym[j]
    return g0 + g1, h0 + h1


@nb.njit(cache=True, fastmath=FAST)
def _norm2(c, mu, G, bounds, offsets, n, s, y, ym, slope_too=True):
    """(||psi(s)||^2, its derivative unless not ``slope_too``) over the modes in use, y = c
    e^{mu s} and ym = mu y there.  The sectors are orthogonal, and G is Hermitian: each sum
    runs over i <= j within a sector, the derivative's row i as conj(mu_i) G y + G (mu y)."""
    norm, slope = 0.0, 0.0
    for b in range(bounds.size - 1):
        lo, hi, size = bounds[b], bounds[b] + n[b], bounds[b + 1] - bounds[b]
        for i in range(lo, hi):
            y[i] = c[i] * np.exp(mu[i] * s)
            ym[i] = mu[i] * y[i]
        for i in range(lo, hi):
            yi, weight = np.conj(y[i]), abs(y[i]) ** 2
            diagonal = offsets[b] + (i - lo) * (size + 1)
            gii = G[diagonal].real
            if slope_too:
                g, h = _rows(G, diagonal + 1, y, ym, i + 1, hi)
                slope += 2.0 * (weight * gii * mu[i].real + (yi * (np.conj(mu[i]) * g + h)).real)
            else:
                g = _row(G, diagonal + 1, y, i + 1, hi)
            norm += weight * gii + 2.0 * (yi * g).real
    return norm, slope


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def expand(VT, bounds, offsets, y, n, out):
    """out = sum of y_i v_i over the modes in use (v_i = row i of VT within its sector)."""
    out[:] = 0.0
    for b in range(bounds.size - 1):
        lo, hi = bounds[b], bounds[b + 1]
        for i in range(lo, lo + n[b]):
            a, start = y[i], offsets[b] + (i - lo) * (hi - lo) - lo
            for q in range(lo, hi):
                out[q] += a * VT[start + q]


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def amplitudes(W, bounds, offsets, psi, c):
    """c = V^-1 psi sector by sector, each entry summed in order (no BLAS: the same bits
    everywhere); a sector where psi vanishes (a jump leaves the state in one) is skipped."""
    for b in range(bounds.size - 1):
        lo, hi = bounds[b], bounds[b + 1]
        empty = True
        for q in range(lo, hi):
            empty = empty and psi[q] == 0
        for i in range(lo, hi):
            c[i] = 0j if empty else _row(W, offsets[b] + (i - lo) * (hi - lo), psi, lo, hi)


@nb.njit(cache=True)
def _jump_time(c, mu, G, bounds, offsets, a, b, u, bound, y, ym, n, start):
    """The s in (a, b] with ||psi(s)||^2 = u, given ||psi(a)||^2 >= u > ||psi(b)||^2: Newton
    from the bracket's left end (where log ||psi||^2 is convex it never overshoots), bisection
    when a step leaves the bracket.  ``start`` = (norm, slope) at a = 0 if known (the caller
    has them from the state itself, where all modes are still in use), else slope 0.  Returns
    (s, whether y holds the amplitudes at s), with n the modes in use there."""
    _in_use(c, mu, bounds, a, bound, n)
    if a == 0.0 and start[1] < 0.0:
        norm_a, slope_a = start[0], start[1]
    else:
        norm_a, slope_a = _norm2(c, mu, G, bounds, offsets, n, a, y, ym)
    target = math.log(u)
    for _ in range(MAX_ITERATIONS):
        s = a - (math.log(norm_a) - target) * norm_a / slope_a if slope_a < 0.0 else b
        if not a < s < b:
            s = 0.5 * (a + b)
            if not a < s < b:  # the bracket is two neighbouring numbers
                return s, False
        norm, slope = _norm2(c, mu, G, bounds, offsets, n, s, y, ym)
        if abs(norm - u) <= JUMP_TOL * u:
            return s, True
        if norm >= u:
            a, norm_a, slope_a = s, norm, slope
            _in_use(c, mu, bounds, a, bound, n)
        else:
            b = s
    return 0.5 * (a + b), False


@nb.njit(cache=True, nogil=True)
def advance_through(mu, VT, G, bounds, offsets, c, t0, s, u, times, first, last, X, y, ym, n,
                    start):
    """Evolve the amplitudes c (set at time t0; the trajectory is at t0 + s) through
    times[first:last], stopping where ||psi||^2 reaches u.  X[i] gets the state at
    times[first + i]; ``start`` is (||psi||^2, its derivative) at t0 if known (``_jump_time``).
    Returns (k, s, jumped): k the first time not reached, s the stop (the jump, or
    times[last - 1] - t0), with n[b] the modes of sector b in use there and y their amplitudes
    c e^{mu s}."""
    bound = MODE_TOL * math.sqrt(u)
    k = first
    while k < last:
        target = max(times[k] - t0, s)
        _in_use(c, mu, bounds, s, bound, n)
        norm, _ = _norm2(c, mu, G, bounds, offsets, n, target, y, ym, False)
        if norm < u:
            s, fresh = _jump_time(c, mu, G, bounds, offsets, s, target, u, bound, y, ym, n,
                                  start)
            if not fresh:
                _norm2(c, mu, G, bounds, offsets, n, s, y, ym, False)
            return k, s, True
        expand(VT, bounds, offsets, y, n, X[k - first])
        s = target
        k += 1
    _in_use(c, mu, bounds, s, bound, n)
    _norm2(c, mu, G, bounds, offsets, n, s, y, ym, False)
    return last, s, False


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def _jump(mu, G, J, jumps, bounds, offsets, y, n, c, start, rng, full, work, ym):
    """The jump from the state y (modes in use n): each channel's amplitudes J y into work[q]
    and ||L_q psi||^2, the channel drawn with these weights from rng (as ``engines.pick``),
    c its normalised amplitudes and start = (1, derivative of ||psi||^2) there.  Returns q."""
    channels = jumps.shape[0]
    weights = np.empty(channels)
    slopes = np.empty(channels)
    for q in range(channels):
        for b in range(bounds.size - 1):
            lo, hi = bounds[1 - b], bounds[2 - b]  # the sector L_q maps sector b into
            start_b = jumps[q, b]
            for i in range(lo, hi):
                work[q, i] = 0j if n[b] == 0 else _row(
                    J, start_b + (i - lo) * (bounds[b + 1] - bounds[b]), y, bounds[b],
                    bounds[b] + n[b])
        weights[q], slopes[q] = _norm2(work[q], mu, G, bounds, offsets, full, 0.0, c, ym)
    total = 0.0
    for q in range(channels):
        total += weights[q]
    x, cumulative, chosen = _uniform(rng) * total, 0.0, channels - 1
    for q in range(channels):
        cumulative += weights[q]
        if cumulative >= x:
            chosen = q
            break
    scale = 1.0 / math.sqrt(weights[chosen])
    for i in range(c.size):
        c[i] = work[chosen, i] * scale
    start[0], start[1] = 1.0, slopes[chosen] / weights[chosen]
    return chosen


@nb.njit(cache=True, nogil=True)
def run(mu, VT, G, J, jumps, bounds, offsets, c, clock, times, first, last, X, y, ym, n,
        start, rng, work, event_t, event_q):
    """``advance_through`` times[first:last] with the jumps on the way (``_jump``, then a fresh
    threshold u from rng), clock = [t0, s, u] kept up to date: event_t, event_q get each jump's
    time and channel.  Returns (k, jumps made): k = last unless event_t filled up first."""
    full = bounds[1:] - bounds[:-1]
    count, k = 0, first
    while k < last and count < event_t.size:
        k, s, jumped = advance_through(mu, VT, G, bounds, offsets, c, clock[0], clock[1],
                                       clock[2], times, k, last, X[k - first:], y, ym, n,
                                       start)
        clock[1] = s
        if jumped:
            clock[0] += s
            event_t[count] = clock[0]
            event_q[count] = _jump(mu, G, J, jumps, bounds, offsets, y, n, c, start, rng, full,
                                   work, ym)
            clock[1], clock[2] = 0.0, _uniform(rng)
            count += 1
    return k, count
