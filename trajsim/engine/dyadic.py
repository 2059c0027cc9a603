"""No-jump evolution of a non-normal generator by exact propagators of dyadic steps.

Between jumps a trajectory evolves as psi(t) = exp(A t) psi(0), A = -i H_eff,
H_eff = H - (i/2) sum_c L_c^dag L_c, and it jumps when ||psi(t)||^2 falls to the uniform u drawn
after the last jump.  When H does not commute with the decay (the hybrid model of Eq. (9))
A is not normal, and near its exceptional points an eigen-decomposition is ill-conditioned.
So the no-jump evolution uses the propagators P_k = exp(A h 2^-k), k = 0 .. L (each from a
backward-stable ``scipy.linalg.expm``, block-diagonal over the symmetry sectors): a span tau is
covered greedily by steps h (repeated), then h/2, h/4, ..., each taken only if the norm stays
>= u.  What is left is shorter than s = h 2^-L, and L is chosen so that s ||A|| <= 2^-20: across
it psi and ||psi||^2 are linear to (s ||A||)^2 / 2 ~ 5e-13, so the jump time is the linear root
and the state the linear interpolation.  A span costs tau / h + 2 (L + 1) products at most.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: Below the finest step, psi is linear to this (s ||A|| <= 2^-20 makes it (s ||A||)^2 / 2).
FINEST_STEP_NORM = 2.0**-20


def levels(h: float, norm: float) -> int:
    """L + 1: the number of step sizes h 2^-k such that h 2^-L norm <= FINEST_STEP_NORM."""
    return 1 + max(0, int(np.ceil(np.log2(max(h * norm, 1e-300) / FINEST_STEP_NORM))))


@nb.njit(cache=True)
def _product(Pr, Pi, k, dims, xr, xi, yr, yi):
    """y = P_k x, sector by sector; P_k^T of sector s is stored row by row (so a column of P_k
    is contiguous) in Pr[k] + i Pi[k] after the sectors before it.  Each element adds its terms
    in column order: the same bits on every machine width."""
    yr[:] = 0.0
    yi[:] = 0.0
    x0, m0 = 0, 0
    for s in range(dims.size):
        d = dims[s]
        for c in range(d):
            ar, ai = xr[x0 + c], xi[x0 + c]
            if ar == 0.0 and ai == 0.0:
                continue
            col = m0 + c * d
            for i in range(d):
                pr, pi = Pr[k, col + i], Pi[k, col + i]
                yr[x0 + i] += pr * ar - pi * ai
                yi[x0 + i] += pr * ai + pi * ar
        x0 += d
        m0 += d * d


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
    for k in range(top + 1):
        step = h * 0.5**k
        while tau - elapsed >= step:
            _product(Pr, Pi, k, dims, xr, xi, yr, yi)
            ny = _norm2(yr, yi)
            if ny < u:
                break
            xr[:] = yr
            xi[:] = yi
            n = ny
            elapsed += step
    finest = h * 0.5**top
    rest = max(tau - elapsed, 0.0)
    _product(Pr, Pi, top, dims, xr, xi, yr, yi)
    ny = _norm2(yr, yi)
    theta, jumped = rest / finest, False
    if ny < u and (n - u) <= theta * (n - ny):  # the norm reaches u first
        theta, jumped = (n - u) / (n - ny), True
    for i in range(xr.size):
        xr[i] += theta * (yr[i] - xr[i])
        xi[i] += theta * (yi[i] - xi[i])
    return (elapsed + theta * finest if jumped else tau), jumped
