"""exp(x) for x <= 0 in plain arithmetic, so that loops of exponentials vectorise (a call to the
C library's exp stops the vectoriser), and the fixed-lane sums of the no-jump weights, which give the same bits
for every vector width.

exp(x) = 2^n exp(t), n = round(x / ln 2), t = x - n ln 2 in [-ln 2 / 2, ln 2 / 2] (ln 2 split
in two parts so that t is exact to ~1e-20), exp(t) by its Taylor polynomial of degree 13
(truncation error < 5e-18) in Horner form, 2^n from its exponent bits.  Accuracy: within 2 ulp
of the correctly rounded exp (tests/test_engine.py).  Below x = -707 (exp < 1e-307) the result is
0: subnormal numbers cost ~100 cycles per operation on x86, and in the sensing regime most
modes of a block decay past e^-707 between two jumps.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from llvmlite import ir

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 to 32 bits: n * LN2_HI is exact for |n| < 2^20
LN2_LO = 1.90821492927058770002e-10
#: Taylor coefficients 1/k!, k = 0 .. 13.
TAYLOR = np.array([1.0 / math.factorial(k) for k in range(14)])
#: Below this, exp(x) is returned as 0 (e^-707 = 9.5e-308, just above the smallest normal number).
X_MIN = -707.0


@nb.extending.intrinsic
def _float_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return nb.types.float64(nb.types.int64), codegen


@nb.njit(cache=True, inline="always")
def exp_nonpositive(x):
    """exp(x) for X_MIN <= x <= 0 (also right for 0 < x < 709), 0 for x < X_MIN."""
    y = max(x, X_MIN)
    n = np.floor(y * LOG2E + 0.5)
    t = (y - n * LN2_HI) - n * LN2_LO
    p = TAYLOR[13]
    for k in range(12, -1, -1):
        p = p * t + TAYLOR[k]
    return p * _float_from_bits((np.int64(n) + 1023) << 52) if x >= X_MIN else 0.0


@nb.njit(cache=True, inline="always")
def lane_moments(lam, w):
    """(sum_k w_k, sum_k lam_k w_k), each in four interleaved partial sums added as
    (s0 + s1) + (s2 + s3), then the tail: a fixed order, whatever the CPU's vector width."""
    n0 = n1 = n2 = n3 = 0.0
    d0 = d1 = d2 = d3 = 0.0
    n4 = w.shape[0] - w.shape[0] % 4
    for k in range(0, n4, 4):
        n0 += w[k]
        n1 += w[k + 1]
        n2 += w[k + 2]
        n3 += w[k + 3]
        d0 += lam[k] * w[k]
        d1 += lam[k + 1] * w[k + 1]
        d2 += lam[k + 2] * w[k + 2]
        d3 += lam[k + 3] * w[k + 3]
    n = (n0 + n1) + (n2 + n3)
    d = (d0 + d1) + (d2 + d3)
    for k in range(n4, w.shape[0]):
        n += w[k]
        d += lam[k] * w[k]
    return n, d
