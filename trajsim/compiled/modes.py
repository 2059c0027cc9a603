"""No-jump evolution of a small non-normal generator in its eigenmodes, with the jump time.

For A = -i H_eff = V diag(mu) V^-1 (columns of V of unit norm, modes sorted from the slowest
decay, -Re mu ascending) a state with mode amplitudes c at t0 is, at t0 + s,

    psi(s) = sum_i c_i e^{mu_i s} v_i,   ||psi(s)||^2 = sum_ij conj(y_i) G_ij y_j,
    y_i = c_i e^{mu_i s},   G = V^dag V (the Gram matrix: V is not unitary),

exactly; no time step.  A mode is dropped once the modes after it together weigh
sum_i |c_i| e^{Re mu_i s} <= MODE_TOL sqrt(u) (u the no-jump threshold, below which ||psi||^2
never goes before the jump): the state keeps relative error MODE_TOL, and since the bound only
falls with s, the modes in use shrink to the few slow ones soon after a jump, and so does the
cost, O(n^2) per norm for n modes in use.  The jump is where ||psi(s)||^2 = u: Newton's method
on log ||psi||^2 kept inside a bracket (bisection when it leaves it), to relative JUMP_TOL.

A has sectors that it never mixes (for spins: the parity of the number of spins up, which Sigma
flips): entries and modes bounds[b] .. bounds[b + 1] form sector b, and each matrix (VT = V^T,
G, D, W = V^-1) is stored as its sectors' square blocks one after the other in a flat array,
block b from offsets[b], row-major.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .kernels import FAST

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
def _rows(G, D, start, y, lo, hi):
    """(sum_j G[start + j - lo] y_j, the same with D) over lo <= j < hi, each in two
    interleaved partial sums added in a fixed order."""
    g0, g1, d0, d1 = 0j, 0j, 0j, 0j
    j, shift = lo, start - lo
    while j + 2 <= hi:
        g0 += G[shift + j] * y[j]
        d0 += D[shift + j] * y[j]
        g1 += G[shift + j + 1] * y[j + 1]
        d1 += D[shift + j + 1] * y[j + 1]
        j += 2
    if j < hi:
        g0 += G[shift + j] * y[j]
        d0 += D[shift + j] * y[j]
    return g0 + g1, d0 + d1


@nb.njit(cache=True, fastmath=FAST)
def _norm2(c, mu, G, D, bounds, offsets, n, s, y, slope_too=True):
    """(||psi(s)||^2 = y^dag G y, its derivative y^dag D y unless not ``slope_too``) over the
    modes in use, y = c e^{mu s} there.  The sectors are orthogonal, and the Hermitian G and
    D are summed over i <= j within each."""
    norm, slope = 0.0, 0.0
    for b in range(bounds.size - 1):
        lo, hi, size = bounds[b], bounds[b] + n[b], bounds[b + 1] - bounds[b]
        for i in range(lo, hi):
            y[i] = c[i] * np.exp(mu[i] * s)
        for i in range(lo, hi):
            yi, weight = np.conj(y[i]), abs(y[i]) ** 2
            diagonal = offsets[b] + (i - lo) * (size + 1)
            if slope_too:
                g, d = _rows(G, D, diagonal + 1, y, i + 1, hi)
                slope += weight * D[diagonal].real + 2.0 * (yi * d).real
            else:
                g = _row(G, diagonal + 1, y, i + 1, hi)
            norm += weight * G[diagonal].real + 2.0 * (yi * g).real
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
def _jump_time(c, mu, G, D, bounds, offsets, a, b, u, bound, y, n, start):
    """The s in (a, b] with ||psi(s)||^2 = u, given ||psi(a)||^2 >= u > ||psi(b)||^2: Newton
    from the bracket's left end (where log ||psi||^2 is convex it never overshoots), bisection
    when a step leaves the bracket.  ``start`` = (norm, slope) at a = 0 if known (the caller
    has them from the state itself, where all modes are still in use), else slope 0.  Returns
    (s, whether y holds the amplitudes at s), with n the modes in use there."""
    _in_use(c, mu, bounds, a, bound, n)
    if a == 0.0 and start[1] < 0.0:
        norm_a, slope_a = start[0], start[1]
    else:
        norm_a, slope_a = _norm2(c, mu, G, D, bounds, offsets, n, a, y)
    target = math.log(u)
    for _ in range(MAX_ITERATIONS):
        s = a - (math.log(norm_a) - target) * norm_a / slope_a if slope_a < 0.0 else b
        if not a < s < b:
            s = 0.5 * (a + b)
            if not a < s < b:  # the bracket is two neighbouring numbers
                return s, False
        norm, slope = _norm2(c, mu, G, D, bounds, offsets, n, s, y)
        if abs(norm - u) <= JUMP_TOL * u:
            return s, True
        if norm >= u:
            a, norm_a, slope_a = s, norm, slope
            _in_use(c, mu, bounds, a, bound, n)
        else:
            b = s
    return 0.5 * (a + b), False


@nb.njit(cache=True, nogil=True)
def advance_through(mu, VT, G, D, bounds, offsets, c, t0, s, u, times, first, last, X, y, n,
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
        norm, _ = _norm2(c, mu, G, D, bounds, offsets, n, target, y, False)
        if norm < u:
            s, fresh = _jump_time(c, mu, G, D, bounds, offsets, s, target, u, bound, y, n,
                                  start)
            if not fresh:
                _norm2(c, mu, G, D, bounds, offsets, n, s, y, False)
            return k, s, True
        expand(VT, bounds, offsets, y, n, X[k - first])
        s = target
        k += 1
    _in_use(c, mu, bounds, s, bound, n)
    _norm2(c, mu, G, D, bounds, offsets, n, s, y, False)
    return last, s, False
