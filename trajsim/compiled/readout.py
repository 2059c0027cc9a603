"""S_y readouts of the engines that keep a state vector (record, grouped, hybrid): one
measurement's outcomes drawn from the weights of the S_y eigenvalues m_y, and its Kraus
operator, diagonal in the S_y basis:

    PROJECTIVE  m drawn with probability p_m / sum p, outcome m_y, a_m' = [m' = m]
    WEAK        y = m_y + sigma z (m as above, z standard normal),
                a_m' = exp(-(y - m_y')^2 / (4 sigma^2))
    COPIES      per_time outcomes m_y drawn alike, no back-action.

``measure_spins`` applies it to the spin factor of a hybrid state psi[n, k] (Fock ⊗ V_j):
p_m = sum_n |<n, m_y|psi>|^2, psi <- (1 ⊗ U a U^dag) psi normalised, U[k, m] = <k|m_y>.
``measure_classes`` to the total spin of the grouped engine's classes, psi on the product of
their symmetric blocks: in the product of the classes' S_y eigenbases (U_1 ⊗ ... ⊗ U_M) the
total S_y is diagonal, product state i having the eigenvalue my[index[i]].
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


@nb.njit(cache=True, nogil=True)
def _rotate(x, rotations, starts, dims, back, out):
    """out = (U_1 ⊗ ... ⊗ U_M) x (back) or its adjoint, class by class in order: class k's
    U_k^dag and U_k are the flat dims[k] x dims[k] blocks at starts[k] and after it."""
    work = x.copy()
    left, right = 1, x.size
    for k in range(dims.size):
        d = dims[k]
        right //= d
        start = starts[k] + (d * d if back else 0)
        on_factor(rotations[start:start + d * d].reshape(d, d), work, left, right, out)
        left *= d
        work[:] = out


@nb.njit(cache=True, nogil=True)
def measure_classes(x, rotations, starts, dims, index, my, kind, sigma, stream, out):
    """One S_y measurement (module docstring) of the total spin of classes of dims[k] states,
    x their product state (row-major), in place; x normalised after it (copies too)."""
    psi_y = np.empty_like(x)
    _rotate(x, rotations, starts, dims, False, psi_y)
    probabilities = np.zeros(my.size)
    for i in range(x.size):
        value = psi_y[i]
        probabilities[index[i]] += value.real * value.real + value.imag * value.imag
    a = sy_kraus(probabilities, my, kind, sigma, stream, out)
    if a.size:
        for i in range(x.size):
            psi_y[i] *= a[index[i]]
        _rotate(psi_y, rotations, starts, dims, True, x)
    scale = 1.0 / math.sqrt(_norm2(x))
    for i in range(x.size):
        x[i] *= scale
