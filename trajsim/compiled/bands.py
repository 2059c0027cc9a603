"""Expectation values of banded operators in the reduced states of pure bipartite states.

For psi[a, k] (a the traced factor) the reduced state is rho[k, l] = sum_a psi[a, k] psi[a, l]^*,
and an operator O within ``band`` of the diagonal has Tr(rho O) = sum_{k, delta}
rho[k, k + delta] O[k + delta, k]: only 2 band + 1 diagonals of rho are needed, O(d) per state.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import FAST


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def band_expectations(psis, B, out):
    """out[s, o] = Re Tr(rho_s O_o) for psis[s, a, k] with B[o, band + delta, k] =
    O_o[k + delta, k] (``engines.hybrid._bands``); sums in a fixed order."""
    band = (B.shape[1] - 1) // 2
    dim = psis.shape[2]
    for s in range(psis.shape[0]):
        for o in range(B.shape[0]):
            out[s, o] = 0.0
        for delta in range(-band, band + 1):
            for k in range(max(0, -delta), min(dim, dim - delta)):
                rho = 0j
                for a in range(psis.shape[1]):
                    rho += psis[s, a, k] * np.conj(psis[s, a, k + delta])
                for o in range(B.shape[0]):
                    out[s, o] += (rho * B[o, band + delta, k]).real
