"""Exact references: block density-matrix evolution, closed-form steady states, Liouvillian gaps.

- ``BlockPropagator``: the same generator inside one block without local rates, as dense
  propagators of its two coherence sectors (the record-level engine, ``engines.record``).
- ``evolve``: block master equation of Eq. (11) (Gamma, gamma_coll, local dephasing and
  relaxation) with Poisson and scripted spin loss, over every block (N, j) the dynamics reaches.  Blocks are p_j rho_j
  (trace = probability), the generator is assembled as a sparse superoperator and propagated with
  ``scipy.sparse.linalg.expm_multiply`` (exact to round-off; small N).
- ``steady_ensemble``: Eqs. (6)-(7) (dark state, integer j) and Eq. (D5)/(16) rho ∝ (Sigma^dag Sigma)^-1
  (half-integer j), for Eq. (2) in one block.
- ``liouvillian_gap``: smallest non-zero decay rate of Gamma D[Sigma] inside j = N/2.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eig, expm
from scipy.sparse.linalg import MatrixRankWarning, eigs, expm_multiply, spsolve

from . import dicke
from .dicke import OBSERVABLES
from .model import (
    IN_BLOCK_CHANNELS,
    Rates,
    build_block,
    channel_operator,
    no_jump_generator,
    twisting_energies,
)
from .squeezing import moments_from_columns, wineland_xi2


def observable_matrices(two_j: int, sparse: bool = False) -> dict:
    """Sx, Sy, Sz and the symmetrised products (S_a S_b + S_b S_a)/2 on V_j (dense, or CSR,
    built sparse: O(j) rather than the dense O(j^2), 0.19 s at j = 500)."""
    S = dicke.collective_operators(two_j, sparse)
    ops = dict(S)
    for a, b in (("x", "x"), ("y", "y"), ("z", "z"), ("x", "y"), ("x", "z"), ("y", "z")):
        A, B = S["S" + a], S["S" + b]
        name = f"S{a}2" if a == b else f"S{a}S{b}"
        ops[name] = (A @ B + B @ A) / 2
    return ops


@cache
def observable_rows(two_j: int) -> np.ndarray:
    """Rows O^T raveled, so that Tr(rho O) = rows @ vec(rho) (row-major), for OBSERVABLES
    after N and j."""
    ops = observable_matrices(two_j)
    return np.stack([ops[name].T.ravel() for name in OBSERVABLES[2:]])


def expectations(blocks: dict[tuple[int, int], np.ndarray]) -> dict:
    """Ensemble values from blocks {(N, 2j): p_j rho_j}: OBSERVABLES, the Wineland 'xi2' (Eq. 1,
    with N = <N>) and 'P_two_j'[2j], the probability of total spin j."""
    out = dict.fromkeys(OBSERVABLES, 0.0)
    out["P_two_j"] = np.zeros(max(N for N, _ in blocks) + 1)
    for (N, two_j), rho in blocks.items():
        p = np.trace(rho).real
        out["N"] += p * N
        out["j"] += p * two_j / 2
        out["P_two_j"][two_j] += p
        for name, op in observable_matrices(two_j).items():
            out[name] += np.trace(rho @ op).real
    mean, second = moments_from_columns(out)
    out["xi2"] = float(wineland_xi2(out["N"], mean, second))
    return out


# ----------------------------------------------------------------------------- evolution


def block_liouvillian(N: int, two_j: int, rates: Rates) -> sp.csr_matrix:
    """Superoperator of -i[H, .] + sum_c D[L_c] inside one block, H the one-axis twisting of
    Eq. (G1) (row-major vec: vec(A X B) = (A ⊗ B^T) vec X)."""
    diag, off2 = no_jump_generator(N, two_j, rates)
    K = sp.diags([off2, diag, off2], [-2, 0, 2]) if two_j >= 2 else sp.diags([diag], [0])
    H = sp.diags([twisting_energies(two_j, rates)], [0])
    eye = sp.identity(two_j + 1)
    G = -0.5 * (sp.kron(K, eye) + sp.kron(eye, K.T)) - 1j * (sp.kron(H, eye) - sp.kron(eye, H))
    for name in IN_BLOCK_CHANNELS:
        rate, L = channel_operator(name, two_j, rates)
        if rate > 0:
            Ls = sp.csr_matrix(L)
            G = G + rate * sp.kron(Ls, Ls.conj())
    return G.tocsr()


def _loss_superoperator(N: int, two_j: int, two_j1: int) -> sp.csr_matrix:
    """sum_s K_s rho K_s^dag for the loss Kraus operators into (N-1, j1)."""
    S = None
    for up in (False, True):
        K = sp.csr_matrix(dicke.loss_kraus(N, two_j, two_j1, up))
        term = sp.kron(K, K.conj())
        S = term if S is None else S + term
    return S


def _local_superoperators(N: int, two_j: int, rates: Rates) -> dict[int, sp.csr_matrix]:
    """Target 2j' -> sum over local processes and routes of rate (K ⊗ conj K) (docs/method.md)."""
    out: dict[int, sp.csr_matrix] = {}
    for name, rate in rates.local().items():
        for two_j1, two_jp in dicke.local_targets(N, two_j):
            K = sp.csr_matrix(dicke.local_kraus(N, two_j, name, two_j1, two_jp))
            term = rate * sp.kron(K, K.conj())
            out[two_jp] = out[two_jp] + term if two_jp in out else term
    return out


@dataclass
class _Layout:
    keys: list[tuple[int, int]]
    offsets: dict[tuple[int, int], int]
    size: int

    @classmethod
    def reachable(cls, N0: int, two_j0: int, max_losses: int, local: bool) -> _Layout:
        """Blocks reachable from (N0, j0) by local jumps (all j of each N) and up to max_losses."""
        def with_all_j(N):
            return [(N, int(t)) for t in dicke.two_j_values(N)] if local else []

        keys = [(N0, two_j0)] + [k for k in with_all_j(N0) if k != (N0, two_j0)]
        frontier = list(keys)
        for _ in range(max_losses):
            frontier = sorted({(N - 1, t) for N, tj in frontier for t in dicke.loss_targets(N, tj)}
                              | set(with_all_j(frontier[0][0] - 1)))
            keys += frontier
        offsets, size = {}, 0
        for key in keys:
            offsets[key] = size
            size += (key[1] + 1) ** 2
        return cls(keys, offsets, size)

    def split(self, vec: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
        return {
            k: vec[o : o + (k[1] + 1) ** 2].reshape(k[1] + 1, k[1] + 1)
            for k, o in self.offsets.items()
        }


def _generator(layout: _Layout, rates: Rates, loss_rate: float) -> sp.csr_matrix:
    blocks = [[None] * len(layout.keys) for _ in layout.keys]
    index = {k: i for i, k in enumerate(layout.keys)}
    for i, (N, tj) in enumerate(layout.keys):
        G = block_liouvillian(N, tj, rates)
        for two_jp, S in _local_superoperators(N, tj, rates).items():
            if two_jp == tj:
                G = G + S
            else:
                blocks[index[(N, two_jp)]][i] = S
        if loss_rate > 0 and N > 0:
            G = G - loss_rate * N * sp.identity(G.shape[0])
            for tj1 in dicke.loss_targets(N, tj):
                if (N - 1, tj1) in index:
                    blocks[index[(N - 1, tj1)]][i] = loss_rate * N * _loss_superoperator(N, tj, tj1)
        blocks[i][i] = G
    return sp.bmat(blocks, format="csr")


def _loss_map(layout: _Layout) -> sp.csr_matrix:
    """Instantaneous loss of one spin: block (N, j) -> (N-1, j1) for every block of the layout."""
    blocks = [[None] * len(layout.keys) for _ in layout.keys]
    index = {k: i for i, k in enumerate(layout.keys)}
    for i, k in enumerate(layout.keys):
        n = (k[1] + 1) ** 2
        blocks[i][i] = sp.csr_matrix((n, n))
        for tj1 in dicke.loss_targets(*k):
            if (k[0] - 1, tj1) in index:
                blocks[index[(k[0] - 1, tj1)]][i] = _loss_superoperator(k[0], k[1], tj1)
    return sp.bmat(blocks, format="csr")


class Propagator:
    """Exact evolution of Eq. (11) with Poisson and scripted spin loss, on the block density
    matrices p_j rho_j of every block (N, j) reachable from (N0, j0): states are vectors of
    that layout (``initial``, ``blocks``), ``advance`` propagates them with
    ``scipy.sparse.linalg.expm_multiply`` (exact to round-off; small N).

    Scripted losses act at their times: ``advance(vec, t0, t1)`` applies those in (t0, t1],
    ``initial`` those at t = 0, so a state at a loss time is the one after it.
    Poisson losses are followed through ``max_losses`` losses (default: down to N = 0).
    """

    def __init__(self, rates: Rates, N0: int, two_j0: int, loss_rate: float = 0.0,
                 loss_times=(), max_losses: int | None = None):
        self.loss_times = sorted(loss_times)
        if max_losses is None:
            max_losses = N0 if loss_rate > 0 else len(self.loss_times)
        self.layout = _Layout.reachable(N0, two_j0, max_losses, local=bool(rates.local()))
        self.G = _generator(self.layout, rates, loss_rate)
        self.loss_map = _loss_map(self.layout) if self.loss_times else None

    def initial(self, rho0: np.ndarray) -> np.ndarray:
        vec = np.zeros(self.layout.size, complex)
        vec[: rho0.size] = np.asarray(rho0, complex).ravel()
        for t_loss in self.loss_times:
            if t_loss == 0.0:
                vec = self.loss_map @ vec
        return vec

    def advance(self, vec: np.ndarray, t0: float, t1: float) -> np.ndarray:
        for t_loss in self.loss_times:
            if t0 < t_loss <= t1:
                vec = self.loss_map @ expm_multiply(self.G * (t_loss - t0), vec)
                t0 = t_loss
        return expm_multiply(self.G * (t1 - t0), vec) if t1 > t0 else vec

    def blocks(self, vec: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
        return self.layout.split(vec)


class BlockPropagator:
    """exp(G tau) of Eq. (11) without local rates (Gamma, gamma_coll, one-axis twisting) inside
    one block (N, j), on row-major vec(rho) (``block_liouvillian``).

    G changes k and k' of rho[k, k'] together (every operator moves m by +-1, or keeps it), so
    it splits into the sectors k - k' even and k - k' odd, each (D^2 / 2)-dimensional.  The
    propagator of each is a dense matrix exponential (``scipy.linalg.expm``: Pade with scaling
    and squaring, exact to round-off; its cost grows with log ||G tau|| only, so it does not
    grow with r as the jump rate does), cached per tau (up to ``cache_size`` values).  tau is
    rounded to 12 significant digits first, so that the spacings of a time grid, which differ
    in their last bits, share one propagator (a relative time error below 5e-13).

    ``advance_once`` serves the one-off intervals of a random loss time through the eigenmodes
    G = R diag(mu) R^-1 of each sector (one ``scipy.linalg.eig`` per block, then two products
    per interval).  G is not normal, but R is well conditioned here (cond 17-47 at N = 21-41,
    r = 3-5, where the products agree with ``expm`` to 2e-12, and 2e-10 of entries ~0.1 at
    r = 5); where R fails the check ||R mu R^-1 - G|| <= 1e-11 ||G|| the exponential is used.
    """

    def __init__(self, N: int, two_j: int, rates: Rates, cache_size: int = 16):
        if rates.local():
            raise ValueError("BlockPropagator: local rates move j; use Propagator")
        G = block_liouvillian(N, two_j, rates).toarray()
        if np.all(G.imag == 0):
            G = G.real
        k = np.arange(two_j + 1)
        even = ((k[:, None] - k[None, :]) % 2 == 0).ravel()
        self.sectors = [np.flatnonzero(even), np.flatnonzero(~even)]
        self.generators = [G[np.ix_(i, i)] for i in self.sectors]
        self.cache_size = cache_size
        self._cache: dict[float, list[np.ndarray]] = {}
        self._modes: list | None = None
        self._lock = threading.Lock()

    def step(self, tau: float) -> list[np.ndarray]:
        """[exp(G_even tau), exp(G_odd tau)], cached."""
        tau = float(f"{tau:.12g}")
        with self._lock:
            if tau in self._cache:
                return self._cache[tau]
        steps = [expm(G * tau) for G in self.generators]
        with self._lock:
            if len(self._cache) >= self.cache_size:
                del self._cache[next(iter(self._cache))]  # the oldest entry
            self._cache[tau] = steps
        return steps

    def advance(self, X: np.ndarray, tau: float) -> np.ndarray:
        """exp(G tau) applied to the columns of X (each a vec(rho) of this block)."""
        if tau == 0:
            return X
        out = np.empty_like(X)
        for rows, P in zip(self.sectors, self.step(tau)):
            if P.dtype == float and X.dtype == complex:  # real and imaginary parts at once
                Y = np.ascontiguousarray(X[rows])
                out[rows] = (P @ Y.view(float)).view(complex)
            else:
                out[rows] = P @ X[rows]
        return out

    def modes(self) -> list:
        """[(mu, R, R^-1) or None] per sector: G = R diag(mu) R^-1, None where that is not
        accurate to 1e-11 (computed once)."""
        with self._lock:
            if self._modes is None:
                self._modes = [_eigenmodes(G) for G in self.generators]
            return self._modes

    def advance_once(self, X: np.ndarray, tau: float) -> np.ndarray:
        """``advance`` for an interval that will not recur: through the eigenmodes."""
        if tau == 0:
            return X
        out = np.empty(X.shape, complex)
        for rows, G, modes in zip(self.sectors, self.generators, self.modes()):
            if modes is None:
                out[rows] = expm(G * tau) @ X[rows]
            else:
                mu, R, R_inv = modes
                out[rows] = R @ (np.exp(mu * tau)[:, None] * (R_inv @ X[rows]))
        return out


def _eigenmodes(G: np.ndarray):
    """(mu, R, R^-1) with G = R diag(mu) R^-1, or None if that is not accurate to 1e-11."""
    if G.size == 0:  # an empty sector (N = 0 has a single state)
        return np.zeros(0, complex), np.zeros((0, 0), complex), np.zeros((0, 0), complex)
    mu, R = eig(G)
    R_inv = np.linalg.inv(R)
    if np.abs((R * mu) @ R_inv - G).max() > 1e-11 * np.abs(G).max():
        return None
    return mu, R, R_inv


def evolve(rates: Rates, N0: int, two_j0: int, rho0: np.ndarray, t_grid: np.ndarray,
           loss_rate: float = 0.0, loss_times=(), max_losses: int | None = None) -> dict:
    """Exact ensemble observables on t_grid (uniform, from 0) for Eq. (11) with spin loss.

    Scripted losses act at their times; a sample at exactly a loss time sees the state after it.
    Poisson losses (rate per spin) are followed through ``max_losses`` losses (default: down to N=0).
    Returns a dict of arrays over t_grid for OBSERVABLES and 'xi2', and 'P_two_j'[t, 2j], the
    probability of total spin j.
    """
    propagator = Propagator(rates, N0, two_j0, loss_rate, loss_times, max_losses)
    vec, t_now, rows = propagator.initial(rho0), 0.0, []
    for t in t_grid:
        vec = propagator.advance(vec, t_now, t)
        t_now = t
        rows.append(expectations(propagator.blocks(vec)))
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}


def stationary_observables(rates: Rates, N: int) -> dict:
    """Steady state of Eq. (11) with one-axis twisting (no spin loss), as observables
    (``stationary_blocks``): the OBSERVABLES, 'xi2' and 'P_two_j'."""
    return expectations(stationary_blocks(rates, N))


def stationary_generator(rates: Rates, N: int) -> tuple[list[tuple[int, int]], sp.csr_matrix]:
    """The blocks (N, 2j) of N spins that Eq. (11) reaches without spin loss (every j when
    local dephasing or relaxation mix them, else j = N/2 alone) and its generator on their
    row-major vecs, concatenated in that order."""
    layout = _Layout.reachable(N, N, 0, local=bool(rates.local()))
    return layout.keys, _generator(layout, rates, 0.0)


def stationary_blocks(rates: Rates, N: int) -> dict[tuple[int, int], np.ndarray]:
    """Steady state of Eq. (11) with one-axis twisting (no spin loss): {(N, 2j): p_j rho_j}
    (``stationary_generator``: G x = 0 with one equation replaced by Tr rho = 1, sparse LU)."""
    layout = _Layout.reachable(N, N, 0, local=bool(rates.local()))
    diagonals = np.concatenate([offset + np.arange(two_j + 1) * (two_j + 2)
                                for (_, two_j), offset in layout.offsets.items()])
    return layout.split(solve_with_trace(stationary_generator(rates, N)[1], diagonals))


class NotUnique(ValueError):
    """The stationary equations are singular: there are several steady states."""


def solve_with_trace(G: sp.spmatrix, diagonals: np.ndarray) -> np.ndarray:
    """x with G x = 0 and sum x[diagonals] = 1 (the trace): the first equation replaced by the
    trace, sparse LU.  Needs the vec entry 0 (rho[0, 0] of the first block) among the
    diagonals, which makes the system regular for a unique steady state; an exactly singular
    one (several steady states) raises NotUnique.  G is scaled to entries of at most 1 first
    (its kernel is the same): rates of 1e-300 made LU return infinities."""
    scale = abs(G).max() if G.nnz else 0.0
    G = (G / scale if scale > 0 else G).tolil()
    G[0, :] = 0.0
    G[0, diagonals] = 1.0
    rhs = np.zeros(G.shape[0], complex)
    rhs[0] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", MatrixRankWarning)
        try:
            return spsolve(G.tocsc().astype(complex), rhs)
        except MatrixRankWarning:
            raise NotUnique("the steady state is not unique (the stationary equations are "
                            "singular)") from None


# ----------------------------------------------------------------------------- steady states


def steady_ensemble(N: int, two_j: int, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Steady state of Eq. (2) in block (N, j) as an ensemble (weights, Dicke-basis rows).

    Integer j: the dark state of Eqs. (6)-(7) (weight 1).  Half-integer j: Eq. (D5)/(16),
    rho_ss ∝ (Sigma^dag Sigma)^-1 = sum_k lambda_k^-1 |v_k><v_k| over the eigenpairs of the LMG
    Hamiltonian Sigma^dag Sigma (Eq. 15), which is invertible there.
    """
    if two_j % 2 == 0:
        return np.ones(1), dicke.dark_state(two_j, r)[None, :]
    block = build_block(N, two_j, Rates(Gamma=1.0, r=r))
    lam = np.concatenate(block.lam)
    states = np.stack([block.to_dicke(e) for e in np.eye(two_j + 1)])
    if np.any(lam == 0):  # r -> 0: Sigma^dag Sigma is singular to working precision; its zero
        weights = (lam == 0).astype(float)  # modes carry the whole weight of (Sigma^dag Sigma)^-1
    else:
        weights = 1.0 / lam
    return weights / weights.sum(), states


def steady_density_matrix(N: int, two_j: int, r: float) -> np.ndarray:
    weights, states = steady_ensemble(N, two_j, r)
    return (states.T * weights) @ states.conj()


def sy_distribution(N: int, r: float, two_j: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(m_y values, probabilities) of an S_y measurement on the Eq. (2) steady state (Fig. S2)."""
    two_j = N if two_j is None else two_j
    weights, states = steady_ensemble(N, two_j, r)
    my, R = dicke.sy_eigenbasis(two_j)
    amplitudes = (states * (-1j) ** np.arange(two_j + 1)) @ R  # <m_y|v> per ensemble member
    return my, weights @ np.abs(amplitudes) ** 2


def steady_observables(N: int, r: float, two_j: int | None = None) -> dict[str, float]:
    """Wineland xi^2, purity and <Sy^2> (and all OBSERVABLES) of the Eq. (2) steady state."""
    two_j = N if two_j is None else two_j
    rho = steady_density_matrix(N, two_j, r)
    out = expectations({(N, two_j): rho})
    out["purity"] = float(np.sum(np.abs(rho) ** 2))  # Tr rho^2 (rho Hermitian)
    return out


# ----------------------------------------------------------------------------- spectra


def even_coherences(two_j: int) -> np.ndarray:
    """Row-major vec indices of the elements |m><m'| with m - m' even: the operators invariant
    under exp(i pi Sz), which maps Sigma to -Sigma.  D[Sigma], the local channels and spin loss
    keep this sector, and every state reached from a Dicke or dark state lives in it."""
    k = np.arange(two_j + 1)
    return np.flatnonzero(((k[:, None] - k[None, :]) % 2 == 0).ravel())


def liouvillian_gap(N: int, r: float, Gamma: float = 1.0, n_eigs: int = 8,
                    two_j: int | None = None, even_only: bool = False) -> float:
    """Smallest non-zero decay rate -Re(mu) of Gamma D[Sigma] inside block j (default N/2),
    optionally in the sector of ``even_coherences`` only.

    Dense eigenvalues for small blocks, else shift-invert Arnoldi around a small negative shift
    on the sparse D^2 x D^2 superoperator.  NaN for a one-dimensional block (j = 0).
    """
    two_j = N if two_j is None else two_j
    if two_j == 0:
        return np.nan
    G = block_liouvillian(N, two_j, Rates(Gamma=Gamma, r=r))
    if even_only:
        keep = even_coherences(two_j)
        G = G[keep][:, keep]
    if G.shape[0] <= 400:
        mu = np.linalg.eigvals(G.toarray())
    else:
        mu = eigs(G.tocsc(), k=n_eigs, sigma=-1e-3 * Gamma, which="LM", return_eigenvectors=False)
    rates = np.sort(-mu.real)
    return float(rates[rates > 1e-8 * Gamma * (N + 1)][0])  # skip the steady state's zero


def minimum_gap(N: int, r: float, Gamma: float = 1.0, even_only: bool = False) -> tuple[float, int]:
    """Smallest Liouvillian gap of Eq. (2) over all blocks j of N spins (Fig. 4(a) inset):
    (gap, 2j of the block where it occurs)."""
    gaps = {two_j: liouvillian_gap(N, r, Gamma, two_j=two_j, even_only=even_only)
            for two_j in map(int, dicke.two_j_values(N))}
    gaps = {k: v for k, v in gaps.items() if np.isfinite(v)}
    two_j = min(gaps, key=gaps.get)
    return gaps[two_j], two_j
