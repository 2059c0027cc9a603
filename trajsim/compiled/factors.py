"""An operator on one factor of a product space, (1 ⊗ M ⊗ 1) x, in compiled code.

x is the flattened array of shape (left, n, right) (row-major, the middle index the factor's);
out[l, i, r] = sum_j M[i, j] x[l, j, r], each entry summed over j in order, the loop over r a
sum of rows (``modes._axpy``, which vectorises): the same bits for any vector width; on the
last factor (right = 1) the loop over i is the sum of rows instead, of M^T.  Used for the
grouped engine's S_y instruments, which rotate each class into its S_y eigenbasis, and the
hybrid engine's, which rotate the spin factor (``readout.measure_spins``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from .kernels import FAST
from .modes import _axpy


@nb.njit(cache=True, nogil=True, fastmath=FAST)
def on_factor(M, x, left, right, out):
    """out = (1_left ⊗ M ⊗ 1_right) x (module docstring)."""
    n = M.shape[0]
    out[:] = 0.0
    if right == 1:
        MT = np.ascontiguousarray(M.T).ravel()
        for l in range(left):
            for j in range(n):
                _axpy(out, l * n, MT, j * n, x[l * n + j], n)
        return
    for l in range(left):
        for i in range(n):
            row = (l * n + i) * right
            for j in range(n):
                _axpy(out, row, x, (l * n + j) * right, M[i, j], right)
