"""No-jump evolution of a large sparse non-normal generator by Krylov (Arnoldi) steps.

Between jumps a trajectory evolves as psi(t + s) = exp(A s) psi(t), A = -i H_eff stored as
runs of consecutive rows along one diagonal (``Generator``: the hybrid generator's five or seven
diagonals, or a parity sector of them, where each row of photons is a run), and it jumps where
||psi||^2 falls to the uniform u drawn after the last jump.  From x = beta v_1 the
Arnoldi process (modified Gram-Schmidt) builds an orthonormal basis v_1 .. v_{m+1} of the Krylov
space of A and x and the Hessenberg H_m = V_m^dag A V_m; then for 0 <= s <= h

    psi(t + s) ~ beta V_{m+1} z(s)[:m+1],   z(s) = exp(s Hbar) e_1,

with Hbar the (m+2) x (m+2) matrix of H_m, h_{m+1,m} below it and a 1 at (m+2, m+1): the
corrected scheme of Saad (1992) as in Expokit (Sidje 1998), whose a-posteriori estimate of the
error at s = h from the last two entries of z is accepted when at most TOL beta, otherwise h
shrinks (and the next step's h is chosen from the error, as Expokit does).  A step costs m + 1
sparse products and O(m^2 d); set-up is only the diagonals.  If the Krylov space closes
(h_{j+1,j} <= BREAKDOWN ||A||_inf: a small sector) the step is exact for any h.

Inside a step everything is (m+2)-dimensional: z is carried across sub-steps of
||delta Hbar||_1 <= 1/2 by E = exp(delta Hbar) summed to degree SUB_DEGREE (remainder below
1e-17), and from the boundary below a stop by the Taylor polynomial of z, which gives the state
at every stop inside the step, and ||psi(t + s)||^2 =
beta^2 ||z(s)[:m+1]||^2 (V orthonormal), a polynomial in s inside each sub-step whose root u is
found by bisection.  The estimate at s = h bounds the error at every s < h (it grows with s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numba as nb
import numpy as np
import scipy.sparse as sp

from .kernels import FAST
from .streams import U_MIN

#: Estimated error of each step, relative to ||psi||: a trajectory of S steps is within S TOL.
TOL = 1e-10
#: Krylov dimension m (benchmarks/bench_hybrid.py chose it).
KRYLOV_DIM = 12
#: A run along a diagonal continues over at most this many missing rows (stored as zeros): each
#: run costs a loop's set-up, which short runs (classes of a few spins) do not repay.
RUN_GAP = 4
#: The Krylov space counts as closed (exact) when h_{j+1,j} <= BREAKDOWN ||A||_inf.
BREAKDOWN = 1e-12
#: Sub-steps in the small space: ||delta Hbar||_1 <= SUB_NORM, Taylor degree SUB_DEGREE
#: (remainder SUB_NORM^15 / 15! ~ 2e-17).
SUB_NORM = 0.5
SUB_DEGREE = 14
#: 1/k!, k = 0 .. SUB_DEGREE.
INVERSE_FACTORIAL = np.array([1.0 / math.factorial(k) for k in range(SUB_DEGREE + 1)])
#: What a step costs (``step_seconds``; measured 2026-12-05, AMD EPYC, one thread, on hybrid
#: sectors of 63-603 states and grouped ones of 1 860-7 320): the small-space work, each
#: non-zero (m + 1 products) and each state (Gram-Schmidt, m^2/2 inner products and updates).
STEP_S = 2.2e-5
STEP_S_PER_NNZ = 8e-9
STEP_S_PER_STATE = 1.5e-7
#: What a step may drop or let leak out of its window (``advance_through``), relative to ||psi||
#: (each side, and the leak: a step errs by at most TOL + (sqrt 2 + 1) WINDOW_TOL).
WINDOW_TOL = 1e-11
#: A window starts this many bands (``Generator``) above where the state is held: room for what a
#: step spreads (6: fewest steps redone and Krylov products on hybrid blocks, N = 100-200).
WINDOW_MARGIN = 6
#: ``advance_through`` without a limit on its steps.
UNLIMITED = 2**62
#: Most checkpoints a ``NoJumpPath`` keeps (a trajectory that jumps re-makes at most the
#: path's steps / PATH_CHECKPOINTS * 2 steps before its own).
PATH_CHECKPOINTS = 64
#: Most sub-steps of a step (``_substeps``).
MAX_SUBSTEPS = 4096
#: A step rejected this many times in a row (each at least halves it) means that the state or
#: the generator is not finite: an error rather than an endless loop.
MAX_REJECTIONS = 60


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _axpy(a, x, y):
    """y += a x elementwise: one contiguous loop over slices, which vectorises (the same loop
    indexing whole arrays at an offset does not, and takes 3x longer)."""
    for i in range(y.size):
        y[i] += a[i] * x[i]


@nb.njit(cache=True, fastmath=FAST, inline="always")
def _axpy_scalar(a, x, y):
    """y += a x for a number a."""
    for i in range(y.size):
        y[i] += a * x[i]


@nb.njit(cache=True, fastmath=FAST)
def _matvec(runs, data, x, y, lo, hi):
    """y[lo:hi] = A[lo:hi, lo:hi] x[lo:hi] for A stored as runs (``Generator``): run r = (row,
    column, length) adds data[start:start + length] * x[column:column + length] to
    y[row:row + length], start the sum of the lengths before it, cut where row or column
    leaves [lo, hi); each element sums its runs in the stored order."""
    y[lo:hi] = 0.0
    start = 0
    for r in range(runs.shape[0]):
        row, col, length = runs[r, 0], runs[r, 1], runs[r, 2]
        a = max(0, lo - row, lo - col)
        b = min(length, hi - row, hi - col)
        if b > a:
            _axpy(data[start + a:start + b], x[col + a:col + b], y[row + a:row + b])
        start += length


@nb.njit(cache=True, fastmath=FAST)
def _dot(a, b):
    """<a|b> in four interleaved partial sums (element i in sum i mod 4), added in a fixed
    order: the same bits on every CPU (no BLAS: its threads would change them)."""
    n = a.size
    s0, s1, s2, s3 = 0j, 0j, 0j, 0j
    i = 0
    while i + 4 <= n:
        s0 += np.conj(a[i]) * b[i]
        s1 += np.conj(a[i + 1]) * b[i + 1]
        s2 += np.conj(a[i + 2]) * b[i + 2]
        s3 += np.conj(a[i + 3]) * b[i + 3]
        i += 4
    while i < n:
        s0 += np.conj(a[i]) * b[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


@nb.njit(cache=True)
def _norm2(x):
    total = 0.0
    for i in range(x.size):
        total += x[i].real * x[i].real + x[i].imag * x[i].imag
    return total


@nb.njit(cache=True, fastmath=FAST)
def _arnoldi(runs, data, anorm, x, beta, V, Hbar, lo, hi):
    """V[0 .. m, lo:hi] and Hbar (module docstring) for x[lo:hi] = beta V[0, lo:hi] and
    A[lo:hi, lo:hi]; V[m + 1] is work space.  Returns (p, closed, ||A v_{m+1}||): p the size of
    Hbar in use (j + 1 if the space closed after j + 1 vectors, else m + 2)."""
    m = V.shape[0] - 2
    Hbar[:, :] = 0.0
    for i in range(lo, hi):
        V[0, i] = x[i] / beta
    for j in range(m):
        v = V[j + 1, lo:hi]
        _matvec(runs, data, V[j], V[j + 1], lo, hi)
        for i in range(j + 1):
            hij = _dot(V[i, lo:hi], v)
            Hbar[i, j] = hij
            _axpy_scalar(-hij, V[i, lo:hi], v)
        hnext = math.sqrt(_norm2(v))
        if hnext <= BREAKDOWN * anorm:
            return j + 1, True, 0.0
        Hbar[j + 1, j] = hnext
        for q in range(v.size):
            v[q] /= hnext
    _matvec(runs, data, V[m], V[m + 1], lo, hi)
    Hbar[m + 1, m] = 1.0
    return m + 2, False, math.sqrt(_norm2(V[m + 1, lo:hi]))


@nb.njit(cache=True, fastmath=FAST)
def _taylor_terms(Hbar, p, z, delta, T):
    """T[k] = (delta Hbar)^k z / k!, k = 0 .. SUB_DEGREE (p x p corner of Hbar)."""
    T[0, :p] = z[:p]
    for k in range(1, SUB_DEGREE + 1):
        for i in range(p):
            total = 0j
            for q in range(p):
                total += Hbar[i, q] * T[k - 1, q]
            T[k, i] = total * (delta / k)


@nb.njit(cache=True)
def _sum_terms(T, p, f, out):
    """out = sum_k f^k T[k] (Horner), 0 <= f <= 1."""
    for i in range(p):
        total = T[SUB_DEGREE, i]
        for k in range(SUB_DEGREE - 1, -1, -1):
            total = total * f + T[k, i]
        out[i] = total


@nb.njit(cache=True)
def _exp_taylor(D):
    """sum_{k <= SUB_DEGREE} D^k / k! by Paterson-Stockmeyer: the powers D^0 .. D^4, then
    Horner in D^4 (6 products instead of SUB_DEGREE), without temporaries."""
    p = D.shape[0]
    powers = np.zeros((5, p, p), np.complex128)
    for i in range(p):
        powers[0, i, i] = 1.0
    powers[1] = D
    for i in range(2, 5):
        np.dot(powers[i - 1], D, powers[i])
    E, work = np.zeros((p, p), np.complex128), np.empty((p, p), np.complex128)
    for block in range(SUB_DEGREE // 4, -1, -1):
        if block < SUB_DEGREE // 4:
            np.dot(powers[4], E, work)
            E[:, :] = work
        for i in range(4):
            k = 4 * block + i
            if k <= SUB_DEGREE:
                c = INVERSE_FACTORIAL[k]
                for a in range(p):
                    for b in range(p):
                        E[a, b] += c * powers[i, a, b]
    return E


@nb.njit(cache=True)
def _substeps(Hbar, p, q, h, floor):
    """z at the boundaries of the sub-steps of [0, h]: (Z[i] = z(i delta), i = 0 .. S, delta,
    S delta), Z[i + 1] = E Z[i] with E = exp(delta Hbar) summed to degree SUB_DEGREE.  The step
    ends sooner, at the first boundary where ||Z[i, :q]||^2 < floor (every trajectory has
    jumped by then), or after MAX_SUBSTEPS (a closed space's step, which could span any time)."""
    size = 0.0
    for column in range(p):
        total = 0.0
        for i in range(p):
            total += abs(Hbar[i, column])
        size = max(size, total)
    count = max(1, int(math.ceil(h * size / SUB_NORM)))
    if count > MAX_SUBSTEPS:
        count, h = MAX_SUBSTEPS, MAX_SUBSTEPS * SUB_NORM / size
    delta = h / count
    E = _exp_taylor(Hbar[:p, :p] * delta)
    Z = np.zeros((count + 1, p), np.complex128)
    Z[0, 0] = 1.0
    for i in range(count):
        Z[i + 1] = np.dot(E, Z[i])
        if i + 1 < count and _norm2(Z[i + 1, :q]) < floor:
            return Z[:i + 2], delta, (i + 1) * delta
    return Z, delta, h


@nb.njit(cache=True)
def _error(z, m, beta, avnorm):
    """Expokit's estimate of the step's error from the last two entries of z(h), and the
    exponent of its order (1/m or 1/(m - 1))."""
    p1 = abs(z[m]) * beta
    p2 = abs(z[m + 1]) * beta * avnorm
    if p1 > 10.0 * p2:
        return p2, 1.0 / m
    if p1 > p2:
        return p1 * p2 / (p1 - p2), 1.0 / m
    return p1, 1.0 / (m - 1)


@nb.njit(cache=True)
def _norm_coefficients(T, q):
    """c[n] = sum_{k + l = n} Re <T_k|T_l> over the first q entries: ||z(i delta + f delta)||^2
    = sum_n c[n] f^n."""
    c = np.zeros(2 * SUB_DEGREE + 1)
    for k in range(SUB_DEGREE + 1):
        for l in range(SUB_DEGREE + 1):
            c[k + l] += _dot(T[k, :q], T[l, :q]).real
    return c


@nb.njit(cache=True)
def _polynomial(c, f):
    total = 0.0
    for n in range(c.size - 1, -1, -1):
        total = total * f + c[n]
    return total


@nb.njit(cache=True, fastmath=FAST)
def _expand(V, q, beta, z, x, lo, hi):
    """x[lo:hi] = beta sum_i z[i] V[i, lo:hi], i < q, and 0 outside."""
    x[:] = 0.0
    for i in range(q):
        _axpy_scalar(beta * z[i], V[i, lo:hi], x[lo:hi])


@nb.njit(cache=True)
def _state_at(Hbar, p, Z, delta, s, T, out):
    """z(s) (0 <= s <= h) from the sub-step boundary below s (z(h) is Z[-1] itself)."""
    if s >= delta * (Z.shape[0] - 1):
        out[:p] = Z[-1, :p]
        return
    i = min(int(s / delta), Z.shape[0] - 2)
    f = min(max((s - i * delta) / delta, 0.0), 1.0)
    _taylor_terms(Hbar, p, Z[i], delta, T)
    _sum_terms(T, p, f, out)


@nb.njit(cache=True)
def _least_norm2(Z, q):
    """min over the sub-step boundaries after the first of ||Z[i, :q]||^2: ``_crossing`` finds
    a root exactly when this is below its level."""
    least = np.inf
    for i in range(1, Z.shape[0]):
        least = min(least, _norm2(Z[i, :q]))
    return least


@nb.njit(cache=True)
def _crossing(Hbar, p, q, Z, delta, level, T):
    """The first s in (0, S delta] with ||z(s)[:q]||^2 = level, or -1.0 if none (bisection on
    the norm polynomial of the sub-step where it first falls below level)."""
    for i in range(1, Z.shape[0]):
        if _norm2(Z[i, :q]) < level:
            _taylor_terms(Hbar, p, Z[i - 1], delta, T)
            c = _norm_coefficients(T, q)
            low, high = 0.0, 1.0
            for _ in range(64):
                mid = 0.5 * (low + high)
                if _polynomial(c, mid) >= level:
                    low = mid
                else:
                    high = mid
            return (i - 1 + high) * delta
    return -1.0


@nb.njit(cache=True)
def _window(x, beta, layers, band, reach):
    """The window [lo, hi) of ``advance_through``: the narrowest with lo and hi in layers and
    ||x[:lo + WINDOW_MARGIN band]||, ||x[hi - WINDOW_MARGIN band:]|| <= WINDOW_TOL beta /
    max(1, reach) each, reach = 2 ||A|| h for the step h to come (the whole space if it is one
    layer)."""
    d = x.size
    if layers.size == 2:
        return 0, d
    limit = (WINDOW_TOL * beta / max(1.0, reach)) ** 2
    tail, i = 0.0, d
    while i > 0:
        tail += x[i - 1].real * x[i - 1].real + x[i - 1].imag * x[i - 1].imag
        if tail > limit:
            break
        i -= 1
    head, j = 0.0, 0
    while j < i:
        head += x[j].real * x[j].real + x[j].imag * x[j].imag
        if head > limit:
            break
        j += 1
    hi = layers[np.searchsorted(layers, min(i + WINDOW_MARGIN * band, d))]
    lo = layers[np.searchsorted(layers, max(j - WINDOW_MARGIN * band, 0), "right") - 1]
    return lo, hi


@nb.njit(cache=True)
def _leak(V, q, Z, lo, hi, band, d):
    """Twice the largest ||psi(s)[edges]|| / beta at the step's sub-step boundaries, the edges
    the states within band of a side of the window [lo, hi) that is not a side of the space
    (those A couples out of it), psi(s) = beta sum_i z_i(s) V[i]; 0 for the whole space."""
    bottom = min(hi, lo + band) if lo > 0 else lo  # the bottom edge is [lo, bottom)
    top = max(bottom, hi - band) if hi < d else hi  # the top edge is [top, hi)
    if bottom == lo and top == hi:
        return 0.0
    largest = 0.0
    for r in range(Z.shape[0]):
        total = _edge_norm2(V, q, Z[r], top, hi, _edge_norm2(V, q, Z[r], lo, bottom, 0.0))
        largest = max(largest, total)
    return 2.0 * math.sqrt(largest)


@nb.njit(cache=True)
def _edge_norm2(V, q, z, a, b, total):
    """total + ||sum_i z_i V[i, a:b]||^2, added entry by entry (``_leak``)."""
    for e in range(a, b):
        value = 0j
        for i in range(q):
            value += z[i] * V[i, e]
        total += value.real * value.real + value.imag * value.imag
    return total


def step_seconds(dim: float, nnz: float) -> float:
    """CPU seconds of one Krylov step on a (sector of a) generator of this size."""
    return STEP_S + nnz * STEP_S_PER_NNZ + dim * STEP_S_PER_STATE


def new_step(anorm: float) -> np.ndarray:
    """A trajectory's ``advance_through`` carry at its start: [initial_step, 0 steps, beta,
    least norm and window of the last step (none yet)]."""
    return np.array([initial_step(anorm), 0.0, np.nan, np.nan, np.nan])


@nb.njit(cache=True)
def initial_step(anorm):
    """Expokit's first step for a relative TOL: (1/||A||) (fact TOL / 4)^(1/m),
    fact = ((m+1)/e)^(m+1) sqrt(2 pi (m+1))."""
    m = KRYLOV_DIM
    fact = ((m + 1) / math.e) ** (m + 1) * math.sqrt(2 * math.pi * (m + 1))
    return (fact * TOL / 4.0) ** (1.0 / m) / max(anorm, 1e-300)


@nb.njit(cache=True, nogil=True)
def advance_through(runs, data, anorm, layers, band, x, t, u, times, first, last, step,
                    max_steps):
    """Evolve x (unnormalised, ||x||^2 >= u) from t through times[first:last], stopping where
    ||x||^2 reaches u or after max_steps Krylov steps.  Each step works in the window
    x[lo:hi], the narrowest between two of ``layers`` that holds x (``_window``: the entries
    outside it are dropped), and widens it (each side by a quarter of its width, and the step
    anew) while what A carries out of it in the step (``_leak``) may exceed WINDOW_TOL beta;
    ``band``: A couples no two states further apart.  ``step`` (``new_step``) carries the next
    step size between calls in step[0]; step[1] counts the Krylov steps (Arnoldi processes);
    step[2] and step[3] are the last step's beta and the least ||z[:q]||^2 at its sub-step
    boundaries, which decide whether it jumps (below u / beta^2: ``NoJumpPath``), step[4] its
    window's width.
    Returns (k, t, jumped, X): k the first time not reached, t the time of the stop (the jump,
    times[last - 1], or the end of the last step), X[i] the state at times[first + i] for
    i < k - first; x holds the state at the stop.  A call that stops after max_steps and the
    call that goes on from its (x, t, k, step) make the same steps as one call."""
    m = KRYLOV_DIM
    X = np.empty((last - first, x.size), np.complex128)
    V = np.empty((m + 2, x.size), np.complex128)
    Hbar = np.zeros((m + 2, m + 2), np.complex128)
    T = np.empty((SUB_DEGREE + 1, m + 2), np.complex128)
    z = np.empty(m + 2, np.complex128)
    k, taken = first, 0
    while k < last:
        if times[k] <= t:  # a stop at the current time
            X[k - first] = x
            k += 1
            continue
        if taken == max_steps:
            return k, t, False, X
        taken += 1
        lo, hi = _window(x, math.sqrt(_norm2(x)), layers, band, 2.0 * anorm * step[0])
        x[:lo] = 0.0
        x[hi:] = 0.0
        while True:
            beta = math.sqrt(_norm2(x[lo:hi]))
            p, closed, avnorm = _arnoldi(runs, data, anorm, x, beta, V, Hbar, lo, hi)
            step[1] += 1.0
            q = p if closed else m + 1  # the entries of z that are coefficients of V
            span = times[last - 1] - t
            h = span if closed else min(step[0], span)
            for rejected in range(MAX_REJECTIONS + 1):
                if rejected == MAX_REJECTIONS or not math.isfinite(beta):
                    raise FloatingPointError("krylov.advance_through: no step size meets TOL "
                                             "(a state or generator that is not finite)")
                Z, delta, h = _substeps(Hbar, p, q, h, U_MIN / (beta * beta))
                if closed:
                    break
                err, order = _error(Z[-1], m, beta, avnorm)
                if err <= TOL * beta:
                    grown = 5.0 * h if err == 0.0 else \
                        min(5.0 * h, 0.9 * h * (TOL * beta / err) ** order)
                    step[0] = max(step[0], grown) if h == span else grown  # a clipped step
                    break
                h *= max(0.1, min(0.5, 0.9 * (TOL * beta / err) ** order))
                step[0] = h
            if h * anorm * _leak(V, q, Z, lo, hi, band, x.size) <= WINDOW_TOL:
                break
            more = (hi - lo) // 4 + 1  # each side by a quarter of the width
            hi = layers[np.searchsorted(layers, min(hi + more, x.size))]
            lo = layers[np.searchsorted(layers, max(lo - more, 0), "right") - 1]
        step[2], step[3], step[4] = beta, _least_norm2(Z, q), hi - lo
        root = _crossing(Hbar, p, q, Z, delta, u / (beta * beta), T)
        reach = h if root < 0.0 else root
        while k < last and (times[k] - t < reach or (root < 0.0 and h == span)):
            _state_at(Hbar, p, Z, delta, min(times[k] - t, h), T, z)
            _expand(V, q, beta, z, X[k - first], lo, hi)
            k += 1
        _state_at(Hbar, p, Z, delta, h if root < 0.0 else root, T, z)
        _expand(V, q, beta, z, x, lo, hi)
        if root >= 0.0:
            return k, t + root, True, X
        t = times[last - 1] if h == span else t + h
    return last, t, False, X


@dataclass(frozen=True)
class Generator:
    """A sparse generator A as ``_matvec``'s runs (row, column, length) and their entries, in
    the order of the diagonals (column - row), then of the rows, a run continuing over up to
    RUN_GAP missing rows (stored as zeros); ``anorm`` = ||A||_inf (of the
    whole generator when this is a sector of it: a bound for the sector).  ``sectors``: (indices,
    A restricted to them) for two sets of states that A never mixes (a parity), or empty.
    With a ``key`` per state (``of``) the runs hold the states sorted by key (``order``: state
    i of the runs is state order[i] of A) and a Krylov step works on those of the lowest keys
    that hold the state (``advance_through``'s window): ``layers`` are where the key grows (and
    the dimension), ``band`` the largest distance A couples in that order."""

    runs: np.ndarray
    data: np.ndarray
    dim: int
    anorm: float
    sectors: tuple = ()
    order: np.ndarray | None = None
    layers: np.ndarray | None = None
    band: int = 0

    @classmethod
    def of(cls, A, labels: np.ndarray | None = None, anorm: float | None = None,
           key: np.ndarray | None = None) -> Generator:
        """The runs of the scipy sparse matrix A (its stored entries, explicit zeros too), with
        the sectors labels == 0 and labels == 1 if A keeps them apart, and the states sorted by
        ``key`` (stable) if given."""
        A = sp.csr_matrix(A)
        dim = A.shape[0]
        if anorm is None:
            anorm = float(abs(A).sum(axis=1).max()) if A.nnz else 0.0
        sectors = ()
        coo = A.tocoo()
        if labels is not None and np.all(labels[coo.row] == labels[coo.col]):
            sectors = tuple(cls.of(A[idx][:, idx], anorm=anorm, key=None if key is None else
                                   key[idx]).placed(idx)
                            for idx in (np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)))
        order, layers = None, np.array([0, dim], np.int64)
        if key is not None:
            order = np.argsort(key, kind="stable")
            A, key = A[order][:, order], key[order]
            layers = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1, [dim])).astype(np.int64)
            if np.array_equal(order, np.arange(dim)):
                order = None
        runs, data = _runs(A)
        band = int(np.abs(runs[:, 1] - runs[:, 0]).max(initial=0))
        return cls(runs, data, dim, anorm, sectors, order, layers, band)

    def placed(self, idx: np.ndarray) -> tuple[np.ndarray, Generator]:
        """(idx, self) as a sector of a larger generator, idx in the order of the runs."""
        return (idx if self.order is None else idx[self.order]), replace(self, order=None)

    @property
    def nbytes(self) -> int:
        return (self.runs.nbytes + self.data.nbytes + self.layers.nbytes
                + (0 if self.order is None else self.order.nbytes)
                + sum(idx.nbytes + S.nbytes for idx, S in self.sectors))

    def matrix(self) -> sp.csr_matrix:
        """A itself."""
        rows = np.concatenate([np.arange(r, r + n) for r, _, n in self.runs] or [[]])
        cols = np.concatenate([np.arange(c, c + n) for _, c, n in self.runs] or [[]])
        A = sp.csr_matrix((self.data, (rows, cols)), shape=(self.dim, self.dim))
        if self.order is None:
            return A
        back = np.argsort(self.order)
        return A[back][:, back]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """A x."""
        x = np.ascontiguousarray(x, complex)
        y = np.empty(self.dim, complex)
        if self.order is None:
            _matvec(self.runs, self.data, x, y, 0, self.dim)
            return y
        _matvec(self.runs, self.data, x[self.order], y, 0, self.dim)
        out = np.empty_like(y)
        out[self.order] = y
        return out

    @cached_property
    def parts(self) -> tuple:
        """The generator as compiled code takes it (``part_of``): its two sectors and the
        whole space, each (runs, data, layers, band, where its states sit in x); without
        sectors the whole space three times."""
        order = np.arange(self.dim) if self.order is None else self.order
        sectors = self.sectors or ((order, self), (order, self))
        return tuple((g.runs, g.data, g.layers, g.band, np.ascontiguousarray(idx, np.int64))
                     for idx, g in (*sectors, (order, self)))

    def advance_through(self, x: np.ndarray, t: float, u: float, times: np.ndarray, first: int,
                        last: int, step: np.ndarray, max_steps: int = UNLIMITED):
        """``advance_through`` with this generator: in the sector of x if it lies in one (half
        the work, ``part_of``), else in the whole space; x and the states returned are the
        whole space's."""
        runs, data, layers, band, idx = self.parts[part_of(x, self.parts)]
        y = x[idx]
        k, t, jumped, Y = advance_through(runs, data, self.anorm, layers, band, y, t, u, times,
                                          first, last, step, max_steps)
        x[idx] = y
        X = np.zeros((k - first, x.size), complex)
        X[:, idx] = Y[:k - first]
        return k, t, jumped, X


@nb.njit(cache=True, nogil=True)
def part_of(x, parts):
    """Which of a ``Generator``'s parts x lies in: sector 0 or 1 if the other holds nothing,
    else 2 (the whole space)."""
    for s in range(2):
        if not np.any(x[parts[1 - s][4]] != 0):
            return s
    return 2


def _runs(A: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(runs, data) of A for ``Generator``."""
    coo = sp.coo_matrix(A)
    coo.sum_duplicates()
    row = coo.row.astype(np.int64)
    diagonal = coo.col - row
    order = np.lexsort((row, diagonal))
    row, diagonal, value = row[order], diagonal[order], coo.data[order]
    first = np.ones(row.size, bool)  # a run starts at a new diagonal or after a long gap
    first[1:] = (diagonal[1:] != diagonal[:-1]) | (row[1:] > row[:-1] + 1 + RUN_GAP)
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], row.size)[:starts.size] - 1  # none without entries
    lengths = row[ends] - row[starts] + 1
    runs = np.column_stack((row[starts], row[starts] + diagonal[starts], lengths))
    entries = np.diff(np.append(starts, row.size))  # stored entries per run
    run_start = np.cumsum(lengths) - lengths  # where each run's data begins
    data = np.zeros(int(lengths.sum()), complex)
    data[np.repeat(run_start - row[starts], entries) + row] = value
    return np.ascontiguousarray(runs, np.int64).reshape(-1, 3), data


@dataclass(frozen=True)
class NoJumpPath:
    """The no-jump evolution of one state x0 from t0 through times[first:last], step by step as
    ``advance_through`` makes it, for every trajectory that starts there to share: the step
    sequence does not depend on the threshold u, which only decides the step that jumps (the
    first whose least ||z||^2 is below u / beta^2).  A trajectory with threshold u takes the
    path's states up to the last checkpoint (x, t, k, step at a step's start) before that step
    and goes on from there with ``advance_through``: the same bits as one call from x0.
    ``levels`` and ``betas`` per step; ``X`` the states at times[first:last]; ``end_state``
    the (t, x, step) after the last stop.  A path whose ||x||^2 falls below U_MIN, the least
    u, ends there (every trajectory jumps before: ``X`` then holds the stops before it)."""

    generator: Generator
    times: np.ndarray
    first: int
    last: int
    levels: np.ndarray
    betas: np.ndarray
    checkpoints: tuple
    X: np.ndarray
    end_state: tuple

    @classmethod
    def of(cls, generator: Generator, x0: np.ndarray, t0: float, times: np.ndarray, first: int,
           last: int, step: np.ndarray) -> NoJumpPath:
        """Trace the path one step at a time, keeping at most PATH_CHECKPOINTS checkpoints
        (every stride-th step start, the stride doubling when they overflow)."""
        x, t, k, step = x0.astype(complex), t0, first, step.copy()
        levels, betas, checkpoints, states, stride = [], [], [], [], 1
        while k < last:
            if len(levels) % stride == 0:
                checkpoints.append((len(levels), x.copy(), t, k, step.copy()))
                if len(checkpoints) > PATH_CHECKPOINTS:
                    checkpoints, stride = checkpoints[::2], 2 * stride
            k_new, t, _, X = generator.advance_through(x, t, 0.0, times, k, last, step, 1)
            states.append(X[:k_new - k])
            k = k_new
            levels.append(step[3])
            betas.append(step[2])
            if _norm2(x) < U_MIN:  # every trajectory has jumped (its step ended here)
                break
        X = np.concatenate(states) if states else np.zeros((0, x.size), complex)
        return cls(generator, times, first, last, np.array(levels), np.array(betas),
                   tuple(checkpoints), X, (t, x, step))

    def checkpoint(self, u: float) -> tuple | None:
        """Where a trajectory with threshold u goes on alone: (k, x, t, step) of the last
        checkpoint before the step where it jumps (copies), or None if it does not jump."""
        below = np.flatnonzero(self.levels < u / (self.betas * self.betas))
        if below.size == 0:
            return None
        _, x, t, k, step = next(c for c in reversed(self.checkpoints) if c[0] <= below[0])
        return k, x.copy(), t, step.copy()

    def end(self) -> tuple:
        """(t, x, step) after the last stop, for a trajectory that does not jump (copies)."""
        t, x, step = self.end_state
        return t, x.copy(), step.copy()
