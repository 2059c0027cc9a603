"""Expectation values of banded operators in the two reduced states of pure bipartite states.

For psi[a, k] the reduced state of the second factor is rho[k, l] = sum_a psi[a, k] psi[a, l]^*
and that of the first rho[a, b] = sum_k psi[a, k] psi[b, k]^*; an operator O within ``band`` of
the diagonal has Tr(rho O) = sum_{k, delta} rho[k, k + delta] O[k + delta, k]: only 2 band + 1
diagonals of rho are needed, O(d) per state.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import FAST
from .krylov import _dot


@nb.njit(cache=True, nogil=True)
def used_diagonals(B):
    """used[o, i]: diagonal i of operator o has an entry that is not zero."""
    used = np.zeros(B.shape[:2], np.bool_)
    for o in range(B.shape[0]):
        for i in range(B.shape[1]):
            for k in range(B.shape[2]):
                if B[o, i, k] != 0:
                    used[o, i] = True
                    break
    return used


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def _real_products(a, b):
    """Re sum_k a[k] b[k] in four interleaved partial sums added in a fixed order (as
    ``krylov._dot``: independent chains, the same bits on every CPU)."""
    n = a.size
    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
    i = 0
    while i + 4 <= n:
        s0 += a[i].real * b[i].real - a[i].imag * b[i].imag
        s1 += a[i + 1].real * b[i + 1].real - a[i + 1].imag * b[i + 1].imag
        s2 += a[i + 2].real * b[i + 2].real - a[i + 2].imag * b[i + 2].imag
        s3 += a[i + 3].real * b[i + 3].real - a[i + 3].imag * b[i + 3].imag
        i += 4
    while i < n:
        s0 += a[i].real * b[i].real - a[i].imag * b[i].imag
        i += 1
    return (s0 + s1) + (s2 + s3)


@nb.njit(cache=True, nogil=True, fastmath=FAST, inline="always")
def _add_traces(rho, lo, hi, B, used, i, out, first):
    """out[first + o] += Re sum_{lo <= k < hi} rho[k] B[o, i, k] for each operator o whose
    diagonal i is in use."""
    for o in range(B.shape[0]):
        if used[o, i]:
            out[first + o] += _real_products(rho[lo:hi], B[o, i, lo:hi])


@nb.njit(cache=True, nogil=True, fastmath=FAST, inline="always")
def _add_products(rho, row, lo, hi, delta):
    """rho[k] += row[k] conj(row[k + delta]) for lo <= k < hi (unsigned indices: the loop
    vectorises, each entry still summed in the callers' order)."""
    shift = np.uint64(lo + delta)
    for i in range(np.uint64(hi - lo)):
        k = np.uint64(lo) + i
        rho[k] += row[k] * np.conj(row[shift + i])


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def band_expectations(psis, B, C, used_b, used_c, out):
    """out[s] = (Re Tr(rho_s O) for O in B, then for O in C) / ||psi_s||^2: rho_s the reduced
    state of the second factor of psis[s, a, k] for B, of the first for C, with B[o, band +
    delta, k] = O_o[k + delta, k] (``engines.hybrid._bands``) and ``used_diagonals`` of each;
    sums in a fixed order, the inner loops over contiguous k."""
    band = (B.shape[1] - 1) // 2
    size_a, size_k = psis.shape[1], psis.shape[2]
    rho = np.empty(max(size_a, size_k), np.complex128)
    for s in range(psis.shape[0]):
        psi = psis[s]
        flat = psi.reshape(size_a * size_k)
        norm = _dot(flat, flat).real
        out[s, :] = 0.0
        for delta in range(-band, band + 1):
            lo, hi = max(0, -delta), min(size_k, size_k - delta)
            rho[lo:hi] = 0.0
            for a in range(size_a):
                _add_products(rho, psi[a], lo, hi, delta)
            _add_traces(rho, lo, hi, B, used_b, band + delta, out[s], 0)
            lo, hi = max(0, -delta), min(size_a, size_a - delta)
            for a in range(lo, hi):
                rho[a] = _dot(psi[a + delta], psi[a])
            _add_traces(rho, lo, hi, C, used_c, band + delta, out[s], B.shape[0])
        for o in range(out.shape[1]):
            out[s, o] /= norm
