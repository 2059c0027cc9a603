"""Exact evolution over one interval of the spin-loss ladder: the blocks j = N/2 of N, N - 1, ...

Without local rates a symmetric state stays symmetric, so the state is one unnormalised density
matrix rho_N per spin number N, and Eq. (11) with Poisson loss (rate gamma per spin) reads

    d rho_N / dt = (L_N - gamma N) rho_N + gamma (N + 1) Lambda_{N+1} rho_{N+1},

L_N the generator inside block N (``exact.block_liouvillian``), Lambda the loss map
(``exact._loss_superoperator``).  Over an interval tau the propagator is block lower-triangular;
E(N -> N - k) carries the states that lost k spins within tau.  It is built in the eigenmodes
L_N - gamma N = R_N diag(mu_N) R_N^-1 of each block (``exact.BlockPropagator.modes``, the record
engine's), where with B_N = R_{N-1}^-1 gamma N Lambda_N R_N the blocks F = R_M^-1 E(N -> M) R_N
follow Parlett's recurrence (exp(A tau) commutes with A):

    F(N -> N)     = diag exp(mu_N tau),
    F(N -> N-1)   = B_N o [(exp(mu_c tau) - exp(mu_a tau)) / (mu_c - mu_a)]
                    (the integral of exp(L_{N-1}(tau - s)) gamma N Lambda_N exp(L_N s) ds),
    F(N -> M)     = [F(N-1 -> M) B_N - B_{M+1} F(N -> M+1)] o [1 / (mu_M,c - mu_N,a)],  k >= 2

(o: elementwise, c over the modes of M, a over those of N).  L_N keeps the parity of k - k' of
rho[k, k'] and so does the loss, so all of this runs per sector.  The dissipation leaves only the
slow modes within tau: each E is stored as factors U V of rank ~25 at N = 40 (``_compress``,
Frobenius error <= ``FACTOR_TOL``), so applying the ladder costs O(d rank), not O(d^2).

Where a block's eigenmodes are not accurate (small r: ``BlockPropagator.modes`` gives None) or two
levels share a mode, the column comes from a dense ``expm`` of the ladder's generator over the
levels N .. N - depth instead, up to ``DENSE_MAX`` rows.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.linalg import expm
from scipy.special import gammaln

from .exact import BlockPropagator, Propagator, _loss_superoperator, even_coherences
from .model import Rates

__all__ = ["LadderUnavailable", "LossLadder", "ladder_bytes", "ladder_depth", "sectors",
           "trace"]

#: Losses within one interval are followed while the Poisson bound (gamma N tau)^k / k! of k of
#: them is above this.
DEPTH_TOL = 1e-14
#: Frobenius error of each factored block U V against E.
FACTOR_TOL = 1e-14
#: Two levels whose eigenvalues come closer than this (times tau) take the dense route.
MODE_GAP = 1e-9
#: Rows of the dense route's generator (one sector of the levels N .. N - depth).
DENSE_MAX = 3000


class LadderUnavailable(ValueError):
    """The ladder cannot be built exactly within the limits (one line: why)."""


def ladder_depth(N: int, loss_rate: float, tau: float, mass: float = 1.0) -> int:
    """Losses followed within one interval from N spins carrying ``mass``: the least k with
    mass (gamma N tau)^(k+1) / (k+1)! < DEPTH_TOL (at most N)."""
    mean = loss_rate * N * tau
    if mean <= 0 or mass <= 0:
        return 0
    k = 0
    while k < N and np.log(mass) + (k + 1) * np.log(mean) - gammaln(k + 2) >= np.log(DEPTH_TOL):
        k += 1
    return k


def ladder_bytes(N: int, loss_rate: float, tau: float) -> float:
    """Peak memory of building one column from N spins: the eigenmodes of depth + 2 levels
    (R, R^-1: 16 d^2 bytes a level over both sectors), and in one sector two columns of dense
    F blocks and the couplings (d^2 / 4 complex numbers each)."""
    depth = ladder_depth(N, loss_rate, tau)
    d2 = float(N + 1) ** 4
    return (depth + 2) * 16 * d2 + (3 * depth + 2) * 4 * d2


@dataclass
class _Column:
    """E(N -> N - k) = U[s][k] V[s][offsets[s][k]:offsets[s][k + 1]] in sector s: the V of all
    k stacked, so that one product serves every depth."""

    U: list[list[np.ndarray]]
    V: list[np.ndarray]
    offsets: list[np.ndarray]

    @classmethod
    def of(cls, factors: list[list[tuple[np.ndarray, np.ndarray]]]) -> _Column:
        """From [sector][k] -> (U, V)."""
        return cls([[U for U, _ in blocks] for blocks in factors],
                   [np.concatenate([V for _, V in blocks]) for blocks in factors],
                   [np.cumsum([0] + [V.shape[0] for _, V in blocks]) for blocks in factors])


def _matmul(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A x for x of shape (n,) or (n, B); a real A acts on the real and imaginary parts of a
    complex x at once."""
    if A.dtype == complex:
        return A @ x
    pairs = np.ascontiguousarray(x).view(float).reshape(x.shape[0], 2 * math.prod(x.shape[1:]))
    return np.ascontiguousarray(A @ pairs).view(complex).reshape((A.shape[0], *x.shape[1:]))


def trace(N: int, x: np.ndarray) -> float | np.ndarray:
    """Tr rho_N of the row-major vec x (a float), or of each column of x (shape (d, B))."""
    traces = x[:: N + 2].real.sum(axis=0)
    return float(traces) if x.ndim == 1 else traces


@cache
def sectors(N: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-major vec indices of rho_N (block j = N/2) with k - k' even, and with k - k' odd
    (``BlockPropagator.sectors``)."""
    even = even_coherences(N)
    return even, np.setdiff1d(np.arange((N + 1) ** 2), even)


class LossLadder:
    """exp(A tau) of the loss ladder: ``advance`` applies it to the levels that carry mass,
    ``column(N)`` holds E(N -> N - k) for k = 0 .. depth as factors (built when first needed)."""

    def __init__(self, rates: Rates, loss_rate: float, tau: float):
        if rates.local():
            raise LadderUnavailable("local dephasing or relaxation move j: the parity filter "
                                    "follows the blocks j = N/2 only")
        self.rates, self.loss_rate, self.tau = rates, loss_rate, tau
        self._columns: dict[int, _Column] = {}
        self._blocks: OrderedDict[int, BlockPropagator] = OrderedDict()

    def _block(self, N: int) -> BlockPropagator:
        """The block j = N/2 of N spins (sectors, generators, eigenmodes); the last depth + 2
        are kept (columns are asked for from the top down)."""
        if N in self._blocks:
            self._blocks.move_to_end(N)
        else:
            self._blocks[N] = BlockPropagator(N, N, self.rates, cache_size=1)
            while len(self._blocks) > self.depth(max(self._blocks)) + 2:
                self._blocks.popitem(last=False)
        return self._blocks[N]

    def depth(self, N: int) -> int:
        return ladder_depth(N, self.loss_rate, self.tau)

    def advance(self, levels: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        """Every level {N: row-major vec rho_N, or B of them as columns} through tau, the losses
        within it included; a level's blocks run to the depth its largest mass (Tr rho_N)
        needs."""
        out: dict[int, np.ndarray] = {}
        for N, x in levels.items():
            column = self.column(N)
            mass = float(np.max(trace(N, x)))
            depth = min(len(column.U[0]) - 1, ladder_depth(N, self.loss_rate, self.tau, mass))
            for k in range(depth + 1):
                out.setdefault(N - k, np.zeros(((N - k + 1) ** 2, *x.shape[1:]), complex))
            for s, cols in enumerate(sectors(N)):
                z = _matmul(column.V[s][: column.offsets[s][depth + 1]], x[cols])
                for k in range(depth + 1):
                    part = z[column.offsets[s][k]:column.offsets[s][k + 1]]
                    out[N - k][sectors(N - k)[s]] += _matmul(column.U[s][k], part)
        return out

    def column(self, N: int) -> _Column:
        """E(N -> N - k), k = 0 .. depth, factored (cached)."""
        if N not in self._columns:
            depth = self.depth(N)
            levels = range(N, N - depth - 1, -1)
            exact = all(m is not None for M in levels for m in self._block(M).modes())
            self._columns[N] = _Column.of([
                self._column_modes(N, depth, s) if exact and self._separated(N, depth, s)
                else self._column_dense(N, depth, s) for s in (0, 1)])
        return self._columns[N]

    # ------------------------------------------------------------------ the eigenmode route

    def _mu(self, M: int, s: int) -> np.ndarray:
        return self._block(M).modes()[s][0] - self.loss_rate * M

    def _separated(self, N: int, depth: int, s: int) -> bool:
        """No two levels within the triangle below N share a mode (Parlett's divisor)."""
        for top in range(N, N - depth, -1):
            mu_top = self._mu(top, s)
            for M in range(top - 1, N - depth - 1, -1):
                gap = np.abs(self._mu(M, s)[:, None] - mu_top[None, :]).min(initial=np.inf)
                if gap * self.tau < MODE_GAP:
                    return False
        return True

    def _coupling(self, N: int, s: int) -> np.ndarray:
        """B_N = R_{N-1}^-1 gamma N Lambda_N R_N in one sector."""
        rows, cols = sectors(N - 1)[s], sectors(N)[s]
        loss = (self.loss_rate * N * _loss_superoperator(N, N, N - 1)).tocsr()[rows][:, cols]
        _, R, _ = self._block(N).modes()[s]
        _, _, R_inv = self._block(N - 1).modes()[s]
        return R_inv @ (loss @ R)

    def _column_modes(self, N: int, depth: int, s: int) -> list:
        """Parlett's recurrence over the triangle of columns N - depth .. N (each to the depth
        that the next needs), then column N back in the original coordinates."""
        tau, below, couplings = self.tau, None, {}
        for top in range(N - depth, N + 1):
            mu_top = self._mu(top, s)
            if top > N - depth:
                couplings[top] = self._coupling(top, s)
            F = [np.exp(mu_top * tau)]  # k = 0: the diagonal
            for k in range(1, top - (N - depth) + 1):
                mu_M = self._mu(top - k, s)
                if k == 1:
                    F.append(couplings[top] * _divided_difference(mu_M, mu_top, tau))
                else:
                    rhs = below[k - 1] @ couplings[top] - couplings[top - k + 1] @ F[k - 1]
                    F.append(rhs / (mu_M[:, None] - mu_top[None, :]))
            below = F
        _, _, R_inv = self._block(N).modes()[s]
        out = []
        for k, F_k in enumerate(below):
            _, R_M, _ = self._block(N - k).modes()[s]
            E = (R_M * F_k) @ R_inv if k == 0 else R_M @ F_k @ R_inv
            out.append(_compress(self._typed(E)))
        return out

    # ------------------------------------------------------------------ the dense route

    def _column_dense(self, N: int, depth: int, s: int) -> list:
        """Column N from expm of the ladder generator over levels N .. N - depth
        (``exact.Propagator``'s, restricted to sector s)."""
        ladder = Propagator(self.rates, N, N, self.loss_rate, max_losses=depth)
        rows = [ladder.layout.offsets[(M, M)] + sectors(M)[s] for M in range(N, N - depth - 1, -1)]
        if sum(r.size for r in rows) > DENSE_MAX:
            raise LadderUnavailable(
                f"the eigenmodes of the N = {N} block are not accurate (small r) and the dense "
                f"ladder would have {sum(r.size for r in rows)} > {DENSE_MAX} rows")
        index = np.concatenate(rows)
        column = expm(ladder.G[index][:, index].toarray() * self.tau)[:, :rows[0].size]
        starts = np.cumsum([0] + [r.size for r in rows])
        return [_compress(self._typed(column[a:b])) for a, b in itertools.pairwise(starts)]

    def _typed(self, E: np.ndarray) -> np.ndarray:
        """Real where the generator is (no one-axis twisting)."""
        return E.real.copy() if self.rates.chi == 0 else E


def _divided_difference(mu_c: np.ndarray, mu_a: np.ndarray, tau: float) -> np.ndarray:
    """[(exp(mu_c tau) - exp(mu_a tau)) / (mu_c - mu_a)] over c, a, without cancellation:
    tau exp(x tau) (1 - exp(-z)) / z with x the mode of larger real part and z the difference
    times tau (1 at z = 0)."""
    z = (mu_c[:, None] - mu_a[None, :]) * tau
    slow = np.where(z.real >= 0, mu_c[:, None], mu_a[None, :])
    w = -np.abs(z.real) + 1j * np.where(z.real >= 0, -z.imag, z.imag)  # -z or z: Re w <= 0
    small = np.abs(w) < 1e-8
    safe = np.where(small, 1.0, w)
    ratio = np.where(small, 1 + w / 2, np.expm1(safe) / safe)
    return tau * np.exp(slow * tau) * ratio


def _compress(E: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(U, V) with ||E - U V||_F <= FACTOR_TOL: a range found by random probes (fixed seed),
    doubled until the residual is within the tolerance, then trimmed by an SVD of Q^H E."""
    if not E.size:
        return np.zeros((E.shape[0], 0), E.dtype), np.zeros((0, E.shape[1]), E.dtype)
    rng = np.random.default_rng(0)
    p = min(32, *E.shape)
    while True:
        Q, _ = np.linalg.qr(E @ rng.standard_normal((E.shape[1], p)))
        V = Q.conj().T @ E
        residual = np.linalg.norm(E - Q @ V)
        if residual <= FACTOR_TOL or p == min(E.shape):
            break
        p = min(2 * p, *E.shape)
    W, sv, Vh = np.linalg.svd(V, full_matrices=False)
    tail = np.sqrt(np.cumsum((sv ** 2)[::-1])[::-1])  # tail[r] = ||sv[r:]||
    budget = np.sqrt(max(FACTOR_TOL ** 2 - residual ** 2, 0.0))
    rank = int(np.count_nonzero(tail > budget))
    return np.ascontiguousarray((Q @ W[:, :rank]) * sv[:rank]), np.ascontiguousarray(Vh[:rank])
