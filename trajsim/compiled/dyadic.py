"""No-jump evolution of a non-normal generator by exact propagators of dyadic steps.

Between jumps a trajectory evolves as psi(t) = exp(A t) psi(0), A = -i H_eff,
H_eff = H - (i/2) sum_c L_c^dag L_c, and it jumps when ||psi(t)||^2 falls to the uniform u drawn
after the last jump.  When H does not commute with the decay (the hybrid model of Eq. (9))
A is not normal, and near its exceptional points an eigen-decomposition is ill-conditioned.
So the no-jump evolution uses the propagators P_k = exp(A h 2^-k), k = 0 .. L (each from a
backward-stable ``scipy.linalg.expm``, block-diagonal over the symmetry sectors): a span tau is
covered greedily by steps h (repeated), then h/2, h/4, ..., each taken only if the norm stays
>= u (and if at most s = h 2^-L of it is left over: a span one rounding short of a step takes
that step).  What is left is within s either way, and L is chosen so that s ||A||_1 <= 2^-7:
across it psi(t + d) = sum_k d^k A^k psi / k!, k <= 4, to (s ||A||)^5 / 5! ~ 2.4e-13, and
||psi(t + d)||^2 is a polynomial of degree 8 in d whose root u is found by bisection.  A span
costs tau / h + L + 4 products at most, a jump about 1.5 L + 4, a span of whole steps tau / h.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import FAST

#: Below the finest step s, psi is its Taylor polynomial of degree TAYLOR: s ||A|| <= 2^-7 makes
#: the remainder (s ||A||)^5 / 5! ~ 2.4e-13.
FINEST_STEP_NORM = 2.0**-7
TAYLOR = 4


def levels(h: float, norm: float) -> int:
    """L + 1: the number of step sizes h 2^-k such that h 2^-L norm <= FINEST_STEP_NORM."""
    return 1 + max(0, int(np.ceil(np.log2(max(h * norm, 1e-300) / FINEST_STEP_NORM))))


@nb.njit(cache=True, fastmath=FAST)
def _product(Pr, Pi, k, dims, xr, xi, yr, yi):
    """y = P_k x, sector by sector (an empty sector is skipped: a state of definite parity
    occupies one); P_k^T of sector s is stored row by row (a column of P_k is contiguous) in
    Pr[k] + i Pi[k] after the sectors before it.  Four columns per pass through slice views;
    each element adds its terms in the same order on every run."""
    yr[:] = 0.0
    yi[:] = 0.0
    x0, m0 = 0, 0
    for s in range(dims.size):
        d = dims[s]
        if _norm2(xr[x0:x0 + d], xi[x0:x0 + d]) > 0.0:
            _sector_product(Pr[k, m0:m0 + d * d], Pi[k, m0:m0 + d * d], d,
                            xr[x0:x0 + d], xi[x0:x0 + d], yr[x0:x0 + d], yi[x0:x0 + d])
        x0 += d
        m0 += d * d


@nb.njit(cache=True, fastmath=FAST)
def _sector_product(Pr, Pi, d, xr, xi, yr, yi):
    c = 0
    while c + 4 <= d:
        a0r, a0i, a1r, a1i = xr[c], xi[c], xr[c + 1], xi[c + 1]
        a2r, a2i, a3r, a3i = xr[c + 2], xi[c + 2], xr[c + 3], xi[c + 3]
        p0r, p0i = Pr[c * d:(c + 1) * d], Pi[c * d:(c + 1) * d]
        p1r, p1i = Pr[(c + 1) * d:(c + 2) * d], Pi[(c + 1) * d:(c + 2) * d]
        p2r, p2i = Pr[(c + 2) * d:(c + 3) * d], Pi[(c + 2) * d:(c + 3) * d]
        p3r, p3i = Pr[(c + 3) * d:(c + 4) * d], Pi[(c + 3) * d:(c + 4) * d]
        for i in range(d):
            yr[i] += ((p0r[i] * a0r - p0i[i] * a0i) + (p1r[i] * a1r - p1i[i] * a1i)
                      + (p2r[i] * a2r - p2i[i] * a2i) + (p3r[i] * a3r - p3i[i] * a3i))
            yi[i] += ((p0r[i] * a0i + p0i[i] * a0r) + (p1r[i] * a1i + p1i[i] * a1r)
                      + (p2r[i] * a2i + p2i[i] * a2r) + (p3r[i] * a3i + p3i[i] * a3r))
        c += 4
    while c < d:
        pr, pi = Pr[c * d:(c + 1) * d], Pi[c * d:(c + 1) * d]
        for i in range(d):
            yr[i] += pr[i] * xr[c] - pi[i] * xi[c]
            yi[i] += pr[i] * xi[c] + pi[i] * xr[c]
        c += 1


@nb.njit(cache=True)
def _norm2(xr, xi):
    total = 0.0
    for i in range(xr.size):
        total += xr[i] * xr[i] + xi[i] * xi[i]
    return total


@nb.njit(cache=True)
def _dot(ar, ai, br, bi):
    """Re <a|b>."""
    total = 0.0
    for i in range(ar.size):
        total += ar[i] * br[i] + ai[i] * bi[i]
    return total


@nb.njit(cache=True)
def _taylor(Ar, Ai, dims, xr, xi, Vr, Vi):
    """V[k] = A^k x / k!, k = 0 .. TAYLOR (psi(t + d) = sum_k d^k V[k]), and the coefficients
    c[m] = sum_{k + l = m} Re <V_k|V_l> of ||psi(t + d)||^2 = sum_m c[m] d^m."""
    Vr[0] = xr
    Vi[0] = xi
    for k in range(1, TAYLOR + 1):
        _product(Ar, Ai, 0, dims, Vr[k - 1], Vi[k - 1], Vr[k], Vi[k])
        Vr[k] /= k
        Vi[k] /= k
    c = np.zeros(2 * TAYLOR + 1)
    for k in range(TAYLOR + 1):
        for m in range(TAYLOR + 1):
            c[k + m] += _dot(Vr[k], Vi[k], Vr[m], Vi[m])
    return c


@nb.njit(cache=True)
def _polynomial(c, d):
    total = 0.0
    for m in range(c.size - 1, -1, -1):
        total = total * d + c[m]
    return total


@nb.njit(cache=True)
def advance(Pr, Pi, Ar, Ai, dims, h, xr, xi, tau, u):
    """Evolve x = xr + i xi (unnormalised) by up to tau, stopping where ||x||^2 reaches u
    (module docstring; Ar + i Ai is A stored as one level of P).  Returns (elapsed, jumped);
    x holds the state at the stop."""
    yr, yi = np.empty_like(xr), np.empty_like(xi)
    elapsed = 0.0
    top = Pr.shape[0] - 1
    finest = h * 0.5**top
    for k in range(top + 1):
        step, slack = h * 0.5**k, finest if k < top else 0.0
        while tau - elapsed >= step - slack:  # a span of 0.5 - 1 ulp takes one step of 0.5
            _product(Pr, Pi, k, dims, xr, xi, yr, yi)
            if _norm2(yr, yi) < u:
                break
            xr[:] = yr
            xi[:] = yi
            elapsed += step
    rest = tau - elapsed  # in [-finest, finest), or beyond when a finest step crossed u
    if rest == 0.0:  # every step taken, each keeping the norm >= u: no jump in the span
        return tau, False
    Vr, Vi = np.empty((TAYLOR + 1, xr.size)), np.empty((TAYLOR + 1, xr.size))
    c = _taylor(Ar, Ai, dims, xr, xi, Vr, Vi)
    reach, d, jumped = min(rest, finest), rest, False
    if _polynomial(c, reach) < u:  # the root of ||psi(t + d)||^2 = u, by bisection
        low, high = 0.0, reach
        for _ in range(64):
            mid = 0.5 * (low + high)
            if _polynomial(c, mid) >= u:
                low = mid
            else:
                high = mid
        d, jumped = high, True
    elif rest > finest:  # the exact finest step crossed u, its polynomial only by rounding
        d, jumped = finest, True
    for i in range(xr.size):
        re, im = Vr[TAYLOR, i], Vi[TAYLOR, i]
        for k in range(TAYLOR - 1, -1, -1):
            re, im = re * d + Vr[k, i], im * d + Vi[k, i]
        xr[i], xi[i] = re, im
    return (elapsed + d if jumped else tau), jumped


@nb.njit(cache=True)
def advance_through(Pr, Pi, Ar, Ai, dims, h, xr, xi, t, u, times, first, last):
    """``advance`` from t through times[first:last] (no event due before times[last - 1]),
    keeping x at each: returns (k, t, jumped, X_re, X_im) with k the first time not reached
    and X[i] the state at times[first + i], i < k - first."""
    Xr, Xi = np.empty((last - first, xr.size)), np.empty((last - first, xr.size))
    for k in range(first, last):
        elapsed, jumped = advance(Pr, Pi, Ar, Ai, dims, h, xr, xi, times[k] - t, u)
        if jumped:
            return k, t + elapsed, True, Xr, Xi
        t = times[k]
        Xr[k - first] = xr
        Xi[k - first] = xi
    return last, t, False, Xr, Xi
