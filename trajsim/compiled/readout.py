"""S_y readouts of the engines that keep a state vector (record, grouped, hybrid): one
measurement's outcomes drawn from the weights of the S_y eigenvalues m_y, and its Kraus
operator, diagonal in the S_y basis:

    PROJECTIVE  m drawn with probability p_m / sum p, outcome m_y, a_m' = [m' = m]
    WEAK        y = m_y + sigma z (m as above, z standard normal),
                a_m' = exp(-(y - m_y')^2 / (4 sigma^2))
    COPIES      per_time outcomes m_y drawn alike, no back-action.

``measure_spins`` applies it to the spin factor of a hybrid state psi[n, k] (Fock ⊗ V_j):
p_m = sum_n |<n, m_y|psi>|^2, psi <- (1 ⊗ U a U^dag) psi normalised, U[k, m] = <k|m_y>.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from .factors import on_factor
from .krylov import _norm2
from .layout import COPIES, PROJECTIVE
from .streams import _gaussian, _uniform


@nb.njit(cache=True, nogil=True)
def sy_kraus(probabilities, my, kind, sigma, stream, out):
    """Draw one S_y measurement (module docstring) from the unnormalised weights of my into
    ``out`` (its outcomes) with stream; returns a (empty for COPIES)."""
    cumulative = np.cumsum(np.maximum(probabilities, 0.0))
    m = 0
    for shot in range(out.size):
        m = min(np.searchsorted(cumulative, _uniform(stream) * cumulative[-1]), my.size - 1)
        out[shot] = my[m]
    if kind == COPIES:
        return np.empty(0)
    if kind == PROJECTIVE:
        a = np.zeros(my.size)
        a[m] = 1.0
        return a
    out[0] += sigma * _gaussian(stream)
    return np.exp(-((out[0] - my) ** 2) / (4.0 * sigma * sigma))


@nb.njit(cache=True, nogil=True)
def measure_spins(x, U, my, kind, sigma, stream, out):
    """One S_y measurement (module docstring) on the spin factor of x = psi.ravel(),
    psi[n, k] on Fock ⊗ V_j (U: (2j+1) x (2j+1)), in place; x normalised after it (copies too).
    The rotations are ``factors.on_factor`` on the last factor."""
    spins = U.shape[0]
    fock = x.size // spins
    psi_y = np.empty_like(x)  # <n, m_y|psi>
    on_factor(np.ascontiguousarray(np.conj(U).T), x, fock, 1, psi_y)
    probabilities = np.zeros(spins)
    for n in range(fock):
        for m in range(spins):
            value = psi_y[n * spins + m]
            probabilities[m] += value.real * value.real + value.imag * value.imag
    a = sy_kraus(probabilities, my, kind, sigma, stream, out)
    if a.size:
        for n in range(fock):
            for m in range(spins):
                psi_y[n * spins + m] *= a[m]
        on_factor(U, psi_y, fock, 1, x)
    scale = 1.0 / math.sqrt(_norm2(x))
    for i in range(x.size):
        x[i] *= scale
