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
def _in_use(c, mu, s, bound):
    """The number n of leading modes kept at s: the rest weigh at most ``bound``."""
    n, tail = c.size, 0.0
    while n > 1:
        weight = abs(c[n - 1]) * math.exp(mu[n - 1].real * s)
        if tail + weight > bound:
            break
        tail += weight
        n -= 1
    return n


@nb.njit(cache=True, fastmath=FAST)
def _norm2(c, mu, G, n, s, y):
    """(||psi(s)||^2, its derivative in s) over the first n modes; y[:n] = c e^{mu s}.
    G is Hermitian: the sum runs over i <= j, each off-diagonal pair counted twice."""
    for i in range(n):
        y[i] = c[i] * np.exp(mu[i] * s)
    norm, slope = 0.0, 0.0
    for i in range(n):
        yi = np.conj(y[i])
        total, moment = 0j, 0j
        for j in range(i + 1, n):
            g = G[i, j] * y[j]
            total += g
            moment += g * mu[j]
        norm += abs(y[i]) ** 2 * G[i, i].real + 2.0 * (yi * total).real
        slope += 2.0 * (abs(y[i]) ** 2 * G[i, i].real * mu[i].real
                        + (yi * (moment + np.conj(mu[i]) * total)).real)
    return norm, slope


@nb.njit(cache=True, fastmath=FAST)
def expand(VT, y, n, out):
    """out = sum_{i < n} y_i v_i (VT[i] = v_i, contiguous)."""
    out[:] = 0.0
    for i in range(n):
        a = y[i]
        row = VT[i]
        for q in range(out.size):
            out[q] += a * row[q]


@nb.njit(cache=True, fastmath=FAST)
def apply(M, y, n, out):
    """out = M[:, :n] y[:n], each entry summed in order (no BLAS: the same bits everywhere)."""
    for i in range(M.shape[0]):
        total = 0j
        for j in range(n):
            total += M[i, j] * y[j]
        out[i] = total


@nb.njit(cache=True)
def _jump_time(c, mu, G, a, b, u, bound, y):
    """The s in (a, b] with ||psi(s)||^2 = u, given ||psi(a)||^2 >= u > ||psi(b)||^2: Newton
    from the bracket's left end (where log ||psi||^2 is convex it never overshoots), bisection
    when a step leaves the bracket.  Returns (s, modes in use at s)."""
    n = _in_use(c, mu, a, bound)
    norm_a, slope_a = _norm2(c, mu, G, n, a, y)
    target = math.log(u)
    for _ in range(MAX_ITERATIONS):
        s = a - (math.log(norm_a) - target) * norm_a / slope_a if slope_a < 0.0 else b
        if not a < s < b:
            s = 0.5 * (a + b)
            if not a < s < b:  # the bracket is two neighbouring numbers
                return s, n
        norm, slope = _norm2(c, mu, G, n, s, y)
        if abs(norm - u) <= JUMP_TOL * u:
            return s, n
        if norm >= u:
            a, norm_a, slope_a = s, norm, slope
            n = _in_use(c, mu, a, bound)
        else:
            b = s
    return 0.5 * (a + b), n


@nb.njit(cache=True)
def advance_through(mu, VT, G, c, t0, s, u, times, first, last, X, y):
    """Evolve the amplitudes c (set at time t0; the trajectory is at t0 + s) through
    times[first:last], stopping where ||psi||^2 reaches u.  X[i] gets the state at
    times[first + i].  Returns (k, s, jumped, n): k the first time not reached, s the stop
    (the jump, or times[last - 1] - t0), n the modes in use there, with y[:n] the stop's
    amplitudes c e^{mu s}."""
    bound = MODE_TOL * math.sqrt(u)
    k = first
    while k < last:
        target = max(times[k] - t0, s)
        n = _in_use(c, mu, s, bound)
        norm, _ = _norm2(c, mu, G, n, target, y)
        if norm < u:
            s, n = _jump_time(c, mu, G, s, target, u, bound, y)
            _norm2(c, mu, G, n, s, y)
            return k, s, True, n
        expand(VT, y, n, X[k - first])
        s = target
        k += 1
    n = _in_use(c, mu, s, bound)
    _norm2(c, mu, G, n, s, y)
    return last, s, False, n
