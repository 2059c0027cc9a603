"""The steady state of Eq. (9) at size: G vec(rho) = 0 by restarted GMRES, preconditioned by two
exact solves of simpler models.

G is ``hybrid.liouvillian`` (j = N/2, no local rates) on the entries rho[p, p'] whose states
p = (n, k), p' have the same parity of n + k (the others decay: ``hybrid.steady_state``).  A
sparse LU of G fills in almost densely (the exact solver's limit), so GMRES solves
G P^-1 y = -G x0, x = x0 + P^-1 y, with P^-1 = P1^-1 + P2^-1 (1 - G P1^-1) (multiplicative):

- P1, the adiabatic model: G_c ⊗ 1 + 1 ⊗ G_s - eps, the cavity's own Liouvillian G_c (its
  reservoirs and Delta_c, no spins) beside the spins' Eq. (11) Liouvillian G_s with Gamma,
  gamma_coll of Eqs. (12)-(13).  The Schur form of G_s (dense, S^2 / 2 pairs per sector)
  turns it into one sparse LU of G_c + lambda - eps per eigenvalue lambda of G_s.  It is
  exact for the cavity, whose relaxation in the Fock basis of a takes hundreds of jumps (the
  reservoir's jumps cosh r a + sinh r a^dag random-walk the photon number), and for the spins
  as far as Eq. (11) holds (sqrt(N) g << kappa).
- P2, the no-jump evolution: rho -> A rho + rho A^dag - eps with A = -i H_eff
  (``hybrid.no_jump_generator``), a Sylvester equation solved in the Schur form of A per
  parity sector (LAPACK ztrsyl).  It is exact for the exchange g, where P1 is not.

x0 is P1^-1 of the identity (the adiabatic steady state, since eps is small).  eps = EPS_SHIFT
times the spins' rate scale keeps both solves regular (A has a dark state at kappa_int = 0).
Measured at N = 8, n_max = 45, sqrt(N) g / kappa = 0.5: 193 iterations (P1 alone 550, P2
alone more than 10^4); see docs/benchmarks.md.  GMRES is restarted from its result
(refinement) until the true residual is small, since P is near-singular.  It is accepted when
||G rho|| <= tol (Gamma + gamma_coll) ||rho|| (Frobenius norms; the spins' rate scale, so that
the error of rho stays ~tol where the slowest rates are the spins'), and is returned Hermitian
with unit trace.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, gmres, splu

from . import dicke, exact, hybrid
from .cavity import squeezed_reservoir_rates
from .model import Rates

__all__ = ["MIN_SPIN_RATE", "TOL", "NotConverged", "memory", "spin_rate", "steady_state"]

#: ||G rho|| / ((Gamma + gamma_coll) ||rho||) at which the iteration stops.
TOL = 1e-10
#: The preconditioners' shift eps in units of the spins' Eq. (11) rate scale Gamma + gamma_coll.
EPS_SHIFT = 1e-4
#: The smallest spins' rate Gamma + gamma_coll, relative to the cavity's kappa_sqz + kappa_int,
#: whose steady state the tolerance resolves (``trajsim steady`` refuses smaller g).
MIN_SPIN_RATE = 1e-8
#: GMRES restart length, the most restarts per refinement, and the most refinements (GMRES again
#: from its result: P is near-singular, so GMRES's own residual estimate is optimistic).
RESTART = 80
MAX_RESTARTS = 40
MAX_REFINEMENTS = 6


def _pair_parity(levels: int) -> np.ndarray:
    """(i - i') mod 2 of the pairs (i, i') of ``levels`` states, row-major."""
    i = np.arange(levels)
    return ((i[:, None] - i[None, :]) % 2).ravel()


class NotConverged(ValueError):
    """GMRES did not reach the tolerance within MAX_REFINEMENTS (one line: how far it got)."""


class _Layout:
    """The kept entries of the blocks rho_j (``keys``: (N, 2j) in ``exact.stationary_generator``'s
    order; n + k and n' + k' of equal parity, i.e. n - n' and k - k' of equal parity: every
    operator of Eq. (9) and every local Kraus operator shifts k and k' alike) ordered by that
    parity q, then cavity pair (n, n'), then spin pair (j, k, k'): sector q is the matrix
    X_q[(n, n'), (j, k, k')] that P1 acts on."""

    def __init__(self, F: int, keys: list[tuple[int, int]]):
        S = np.array([two_j + 1 for _, two_j in keys])
        d = F * S
        start = np.concatenate(([0], np.cumsum(d * d)))  # of block j in the full vector
        pairs = [(b, k, k1) for b, s in enumerate(S) for k in range(s) for k1 in range(s)]
        b, k, k1 = (np.array(column) for column in zip(*pairs))
        spin = (k - k1) % 2
        self.cavity = [np.flatnonzero(_pair_parity(F) == q) for q in (0, 1)]
        self.spin = [np.flatnonzero(spin == q) for q in (0, 1)]
        full = []
        for q in (0, 1):
            n, n1 = np.divmod(self.cavity[q], F)
            sb, sk, sk1 = b[self.spin[q]], k[self.spin[q]], k1[self.spin[q]]
            rows = n[:, None] * S[sb] + sk
            cols = n1[:, None] * S[sb] + sk1
            full.append((start[sb] + rows * d[sb] + cols).ravel())
        self.sizes = [len(self.cavity[q]) * len(self.spin[q]) for q in (0, 1)]
        self.full = np.concatenate(full)
        where = np.full(start[-1], -1)
        where[self.full] = np.arange(len(self.full))
        # per block and parity p of n + k: its states and their entries' positions in the vector
        self.blocks = []
        for j, (s, dj) in enumerate(zip(S, d)):
            parity = (np.arange(F)[:, None] + np.arange(s)[None, :]).ravel() % 2
            for p in (0, 1):
                states = np.flatnonzero(parity == p)
                self.blocks.append((j, states,
                                    where[start[j] + (states[:, None] * dj + states).ravel()]))
        self.trace = np.concatenate([where[o + np.arange(dj) * (dj + 1)]
                                     for o, dj in zip(start, d)])
        self.start, self.dims = start, d

    def sectors(self, x: np.ndarray) -> list[np.ndarray]:
        return [x[: self.sizes[0]].reshape(len(self.cavity[0]), -1),
                x[self.sizes[0]:].reshape(len(self.cavity[1]), -1)]

    def blocks_of(self, x: np.ndarray) -> dict[int, np.ndarray]:
        """The dense rho_j of a vector of kept entries."""
        rho = np.zeros(self.start[-1], complex)
        rho[self.full] = x
        return {j: rho[o:o + dj * dj].reshape(dj, dj)
                for j, (o, dj) in enumerate(zip(self.start, self.dims))}


class _Adiabatic:
    """P1^-1: (G_c ⊗ 1 + 1 ⊗ G_s - eps)^-1 per sector q, by the Schur form G_s = U T U^dag
    (stable where G_s has no eigenbasis: r = 0, kappa_sqz = 0): with X = W U^T the sector
    equation G_c X + X G_s^T - eps X = B is G_c W + W T^T - eps W = B conj(U), whose columns
    are solved from the last, each one sparse LU of G_c + T[j, j] - eps."""

    def __init__(self, layout: _Layout, G_s: np.ndarray, cavity: hybrid.Cavity, eps: float):
        self.layout = layout
        G_c = hybrid.liouvillian(0, cavity).tocsc()
        self.schur, self.solvers = [], []
        for q in (0, 1):
            c, s = layout.cavity[q], layout.spin[q]
            T, U = la.schur(G_s[np.ix_(s, s)], output="complex")
            self.schur.append((T, U))
            block = G_c[c][:, c].tocsc()
            eye = sp.identity(len(c), format="csc")
            self.solvers.append([splu((block + (mu - eps) * eye).tocsc()) for mu in np.diag(T)])

    def solve(self, b: np.ndarray) -> np.ndarray:
        out = []
        for X, (T, U), lus in zip(self.layout.sectors(b), self.schur, self.solvers):
            W = X @ U.conj()
            for j in range(len(lus) - 1, -1, -1):
                rhs = W[:, j] - W[:, j + 1:] @ T[j, j + 1:]
                W[:, j] = lus[j].solve(rhs)
            out.append((W @ U.T).ravel())
        return np.concatenate(out)


class _NoJump:
    """P2^-1: (rho_j -> A_j rho_j + rho_j A_j^dag - eps)^-1 on the parity blocks of each rho_j
    (Schur form of A_j)."""

    def __init__(self, layout: _Layout, N: int, keys: list, cavity: hybrid.Cavity, rates: Rates,
                 eps: float):
        self.schur = []
        A = {}
        for j, states, positions in layout.blocks:
            if j not in A:
                A[j] = hybrid.no_jump_generator(N, keys[j][1], cavity, rates).toarray()
            shifted = A[j][np.ix_(states, states)] - 0.5 * eps * np.eye(len(states))
            self.schur.append((positions, *la.schur(shifted, output="complex")))

    def solve(self, b: np.ndarray) -> np.ndarray:
        out = np.zeros_like(b)
        for positions, T, Q in self.schur:
            C = Q.conj().T @ b[positions].reshape(len(T), len(T)) @ Q
            Y, scale, info = la.lapack.ztrsyl(T, T, C, tranb="C")
            if info < 0:
                raise ValueError(f"ztrsyl: argument {-info} is illegal")
            out[positions] = (Q @ (Y / scale) @ Q.conj().T).ravel()
        return out


def _eq11(cavity: hybrid.Cavity, rates: Rates) -> Rates:
    """The spins' Eq. (11) rates: Gamma, gamma_coll of Eqs. (12)-(13) and the local rates."""
    return squeezed_reservoir_rates(cavity.g, cavity.kappa_sqz, cavity.kappa_int, cavity.r,
                                    rates.gamma_rel, rates.gamma_phi)


def spin_rate(cavity: hybrid.Cavity, rates: Rates = hybrid.NO_LOCAL) -> float:
    """The spins' rate scale: Gamma + gamma_coll of Eqs. (12)-(13) plus the local rates."""
    eq11 = _eq11(cavity, rates)
    return eq11.Gamma + eq11.gamma_coll + eq11.gamma_phi + eq11.gamma_rel


def memory(N: int, cavity: hybrid.Cavity, rates: Rates = hybrid.NO_LOCAL) -> float:
    """Bytes the solver holds: RESTART + 4 vectors of the kept entries, P1's LUs (measured
    about 1.5 (n_max + 1) non-zeros per row, 16 bytes each, and 0.2 MB per SuperLU object, one
    per spin mode) and Schur forms; within 25 % of the measured peak (docs/benchmarks.md)."""
    F = cavity.n_max + 1
    two_js = dicke.two_j_values(N) if rates.local() else [N]
    spin = float(sum((t + 1) ** 2 for t in two_js))
    kept = F**2 * spin / 2
    return 16 * ((RESTART + 4) * kept + 1.5 * F * kept + spin**2 / 2 + 2 * kept / F) + \
        2e5 * spin


def steady_state(N: int, cavity: hybrid.Cavity, rates: Rates = hybrid.NO_LOCAL,
                 tol: float = TOL) -> dict[tuple[int, int], np.ndarray]:
    """The steady state of Eq. (9) with the local rates of Eq. (11): {(N, 2j): p_j rho_j} over
    every j (j = N/2 alone without local rates), as ``hybrid.steady_state`` /
    ``hybrid.steady_blocks`` but iterative: ||G rho|| <= tol (``spin_rate``) ||rho||.  Raises
    NotConverged when GMRES does not get there within MAX_REFINEMENTS."""
    keys, G_s = exact.stationary_generator(_eq11(cavity, rates), N)  # P1's spins
    layout = _Layout(cavity.n_max + 1, keys)
    scale = spin_rate(cavity, rates)
    eps = EPS_SHIFT * scale
    G = hybrid.generator_over_j(N, cavity, rates, keys)[layout.full][:, layout.full].tocsr()
    adiabatic = _Adiabatic(layout, G_s.toarray(), cavity, eps)
    no_jump = _NoJump(layout, N, keys, cavity, rates, eps)

    def precondition(b: np.ndarray) -> np.ndarray:
        z = adiabatic.solve(b)
        return z + no_jump.solve(b - G @ z)

    identity = np.zeros(len(layout.full), complex)
    identity[layout.trace] = 1.0
    x0 = adiabatic.solve(identity)
    x0 /= x0[layout.trace].sum()
    n, x = len(x0), x0
    operator = LinearOperator((n, n), matvec=lambda y: G @ precondition(y), dtype=complex)
    for _ in range(MAX_REFINEMENTS):
        y, _ = gmres(operator, -(G @ x), rtol=0.0, atol=0.1 * tol * scale * np.linalg.norm(x),
                     restart=RESTART, maxiter=MAX_RESTARTS)
        x = x + precondition(y)
        x /= x[layout.trace].sum()
        residual = np.linalg.norm(G @ x) / (scale * np.linalg.norm(x))
        if residual <= tol:
            break
    else:
        raise NotConverged(f"GMRES reached ||G rho|| / (spin rate ||rho||) = {residual:.1e}, "
                         f"not {tol:.0e}, in {MAX_REFINEMENTS} refinements")
    return {keys[j]: (rho + rho.conj().T) / 2 for j, rho in layout.blocks_of(x).items()}
