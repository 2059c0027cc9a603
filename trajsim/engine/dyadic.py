"""No-jump evolution of a non-normal generator by exact propagators of dyadic steps.

Between jumps a trajectory evolves as psi(t) = exp(A t) psi(0), A = -i H_eff,
H_eff = H - (i/2) sum_c L_c^dag L_c, and it jumps when ||psi(t)||^2 falls to the uniform u drawn
after the last jump.  When H does not commute with the decay (the hybrid model of Eq. (9))
A is not normal, and near its exceptional points an eigen-decomposition is ill-conditioned.
So the no-jump evolution uses the propagators P_k = exp(A h 2^-k), k = 0 .. L (each from a
backward-stable ``scipy.linalg.expm``, block-diagonal over the symmetry sectors): a span tau is
covered greedily by steps h (repeated), then h/2, h/4, ..., each taken only if the norm stays
>= u (and if at most s = h 2^-L of it is left over: a span one rounding short of a step takes
that step).  What is left is within s either way, and L is chosen so that s ||A|| <= 2^-20:
across it psi and ||psi||^2 are linear to (s ||A||)^2 / 2 ~ 5e-13, so the jump time is the
linear root and the state the linear inter- (or extra-)polation.  A span costs tau / h + 2 (L + 1)
products at most, a span of whole steps tau / h + 1.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import FAST

#: Below the finest step, psi is linear to this (s ||A|| <= 2^-20 makes it (s ||A||)^2 / 2).
FINEST_STEP_NORM = 2.0**-20


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
def advance(Pr, Pi, dims, h, xr, xi, tau, u):
    """Evolve x = xr + i xi (unnormalised) by up to tau, stopping where ||x||^2 reaches u
    (module docstring).  Returns (elapsed, jumped); x holds the state at the stop."""
    yr, yi = np.empty_like(xr), np.empty_like(xi)
    n, elapsed = _norm2(xr, xi), 0.0
    top = Pr.shape[0] - 1
    finest = h * 0.5**top
    for k in range(top + 1):
        step, slack = h * 0.5**k, finest if k < top else 0.0
        while tau - elapsed >= step - slack:  # a span of 0.5 - 1 ulp takes one step of 0.5
            _product(Pr, Pi, k, dims, xr, xi, yr, yi)
            ny = _norm2(yr, yi)
            if ny < u:
                break
            xr[:] = yr
            xi[:] = yi
            n = ny
            elapsed += step
    rest = tau - elapsed  # in [-finest, finest): interpolated (backwards if negative)
    _product(Pr, Pi, top, dims, xr, xi, yr, yi)
    ny = _norm2(yr, yi)
    theta, jumped = rest / finest, False
    if ny < u and (n - u) <= theta * (n - ny):  # the norm reaches u first
        theta, jumped = (n - u) / (n - ny), True
    for i in range(xr.size):
        xr[i] += theta * (yr[i] - xr[i])
        xi[i] += theta * (yi[i] - xi[i])
    return (elapsed + theta * finest if jumped else tau), jumped
