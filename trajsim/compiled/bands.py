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


@nb.njit(cache=True, nogil=True)
def _used(B):
    """used[o, i]: diagonal i of operator o has an entry that is not zero."""
    used = np.zeros(B.shape[:2], np.bool_)
    for o in range(B.shape[0]):
        for i in range(B.shape[1]):
            for k in range(B.shape[2]):
                if B[o, i, k] != 0:
                    used[o, i] = True
                    break
    return used


@nb.njit(cache=True, nogil=True, fastmath=FAST, inline="always")
def _add_traces(rho, lo, hi, B, used, i, out, first):
    """out[first + o] += Re sum_{lo <= k < hi} rho[k] B[o, i, k] for each operator o whose
    diagonal i is in use."""
    for o in range(B.shape[0]):
        if used[o, i]:
            total = 0.0
            for k in range(lo, hi):
                total += (rho[k] * B[o, i, k]).real
            out[first + o] += total


@nb.njit(cache=True, nogil=True, fastmath=FAST, inline="always")
def _add_products(rho, row, lo, hi, delta):
    """rho[k] += row[k] conj(row[k + delta]) for lo <= k < hi (unsigned indices: the loop
    vectorises, each entry still summed in the callers' order)."""
    shift = np.uint64(lo + delta)
    for i in range(np.uint64(hi - lo)):
        k = np.uint64(lo) + i
        rho[k] += row[k] * np.conj(row[shift + i])


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def band_expectations(psis, B, C, out):
    """out[s] = (Re Tr(rho_s O) for O in B, then for O in C) / ||psi_s||^2: rho_s the reduced
    state of the second factor of psis[s, a, k] for B, of the first for C, with B[o, band +
    delta, k] = O_o[k + delta, k] (``engines.hybrid._bands``); sums in a fixed order, the inner
    loops over contiguous k."""
    band = (B.shape[1] - 1) // 2
    size_a, size_k = psis.shape[1], psis.shape[2]
    rho = np.empty(max(size_a, size_k), np.complex128)
    used_b, used_c = _used(B), _used(C)
    for s in range(psis.shape[0]):
        psi = psis[s]
        norm = 0.0
        for a in range(size_a):
            for k in range(size_k):
                norm += psi[a, k].real * psi[a, k].real + psi[a, k].imag * psi[a, k].imag
        out[s, :] = 0.0
        for delta in range(-band, band + 1):
            lo, hi = max(0, -delta), min(size_k, size_k - delta)
            rho[lo:hi] = 0.0
            for a in range(size_a):
                _add_products(rho, psi[a], lo, hi, delta)
            _add_traces(rho, lo, hi, B, used_b, band + delta, out[s], 0)
            lo, hi = max(0, -delta), min(size_a, size_a - delta)
            for a in range(lo, hi):
                total = 0j
                for k in range(size_k):
                    total += psi[a, k] * np.conj(psi[a + delta, k])
                rho[a] = total
            _add_traces(rho, lo, hi, C, used_c, band + delta, out[s], B.shape[0])
        for o in range(out.shape[1]):
            out[s, o] /= norm
