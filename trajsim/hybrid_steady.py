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

from . import exact, hybrid
from .cavity import squeezed_reservoir_rates

__all__ = ["MIN_SPIN_RATE", "TOL", "memory", "steady_state"]

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


class _Layout:
    """The kept entries of rho (n + k and n' + k' of equal parity, i.e. n - n' and k - k' of
    equal parity) ordered by that parity q, then cavity pair (n, n'), then spin pair (k, k'):
    sector q is the matrix X_q[(n, n'), (k, k')] that P1 acts on."""

    def __init__(self, F: int, S: int):
        self.F, self.S = F, S
        cav, spin = _pair_parity(F), _pair_parity(S)
        self.cavity = [np.flatnonzero(cav == q) for q in (0, 1)]
        self.spin = [np.flatnonzero(spin == q) for q in (0, 1)]
        d = F * S
        full = []  # index of rho[(n, k), (n', k')] in row-major vec(rho)
        for q in (0, 1):
            n, n1 = np.divmod(self.cavity[q], F)
            k, k1 = np.divmod(self.spin[q], S)
            rows = n[:, None] * S + k[None, :]
            cols = n1[:, None] * S + k1[None, :]
            full.append((rows * d + cols).ravel())
        self.sizes = [len(self.cavity[q]) * len(self.spin[q]) for q in (0, 1)]
        self.full = np.concatenate(full)
        states = (np.arange(F)[:, None] + np.arange(S)[None, :]).ravel() % 2
        self.states = [np.flatnonzero(states == p) for p in (0, 1)]
        where = np.full(d * d, -1)
        where[self.full] = np.arange(len(self.full))
        # the entries of rho restricted to states of parity p, as positions in the vector
        self.blocks = [where[(s[:, None] * d + s[None, :]).ravel()] for s in self.states]
        self.trace = where[np.arange(d) * (d + 1)]

    def sectors(self, x: np.ndarray) -> list[np.ndarray]:
        return [x[: self.sizes[0]].reshape(len(self.cavity[0]), -1),
                x[self.sizes[0]:].reshape(len(self.cavity[1]), -1)]


class _Adiabatic:
    """P1^-1: (G_c ⊗ 1 + 1 ⊗ G_s - eps)^-1 per sector q, by the Schur form G_s = U T U^dag
    (stable where G_s has no eigenbasis: r = 0, kappa_sqz = 0): with X = W U^T the sector
    equation G_c X + X G_s^T - eps X = B is G_c W + W T^T - eps W = B conj(U), whose columns
    are solved from the last, each one sparse LU of G_c + T[j, j] - eps."""

    def __init__(self, layout: _Layout, N: int, cavity: hybrid.Cavity, eps: float):
        self.layout = layout
        G_c = hybrid.liouvillian(0, cavity).tocsc()
        rates = squeezed_reservoir_rates(cavity.g, cavity.kappa_sqz, cavity.kappa_int, cavity.r)
        G_s = exact.block_liouvillian(N, N, rates).toarray()
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
    """P2^-1: (rho -> A rho + rho A^dag - eps)^-1 on the parity blocks of rho (Schur form)."""

    def __init__(self, layout: _Layout, N: int, cavity: hybrid.Cavity, eps: float):
        self.layout = layout
        A = hybrid.no_jump_generator(N, N, cavity).toarray() - 0.5 * eps * np.eye(
            len(layout.states[0]) + len(layout.states[1]))
        self.schur = [la.schur(A[np.ix_(s, s)], output="complex") for s in layout.states]

    def solve(self, b: np.ndarray) -> np.ndarray:
        out = np.zeros_like(b)
        for block, (T, Q) in zip(self.layout.blocks, self.schur):
            C = Q.conj().T @ b[block].reshape(len(T), len(T)) @ Q
            Y, scale, info = la.lapack.ztrsyl(T, T, C, tranb="C")
            if info < 0:
                raise ValueError(f"ztrsyl: argument {-info} is illegal")
            out[block] = (Q @ (Y / scale) @ Q.conj().T).ravel()
        return out


def memory(N: int, cavity: hybrid.Cavity) -> float:
    """Bytes the solver holds: RESTART + 4 vectors of the kept entries, P1's LUs (measured
    about 1.5 (n_max + 1) non-zeros per row, 16 bytes each, and 0.2 MB per SuperLU object, one
    per spin mode) and P2's Schur forms; within 25 % of the measured peak (docs/benchmarks.md)."""
    F, S = cavity.n_max + 1, N + 1
    kept = (F * S) ** 2 / 2
    return 16 * ((RESTART + 4) * kept + 1.5 * F * kept + (F * S) ** 2) + 2e5 * S**2


def steady_state(N: int, cavity: hybrid.Cavity, tol: float = TOL) -> np.ndarray:
    """The steady state of Eq. (9) in j = N/2 (dense, (n_max + 1)(N + 1) square), as
    ``hybrid.steady_state`` but iterative: ||G rho|| <= tol (Gamma + gamma_coll) ||rho||.
    Raises ValueError when GMRES does not get there within MAX_REFINEMENTS."""
    F, S = cavity.n_max + 1, N + 1
    layout = _Layout(F, S)
    rates = squeezed_reservoir_rates(cavity.g, cavity.kappa_sqz, cavity.kappa_int, cavity.r)
    scale = rates.Gamma + rates.gamma_coll
    eps = EPS_SHIFT * scale
    G = hybrid.liouvillian(N, cavity)[layout.full][:, layout.full].tocsr()
    adiabatic, no_jump = _Adiabatic(layout, N, cavity, eps), _NoJump(layout, N, cavity, eps)

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
        raise ValueError(f"GMRES reached ||G rho|| / ((Gamma + gamma_coll) ||rho||) = "
                         f"{residual:.1e}, not {tol:.0e}, in {MAX_REFINEMENTS} refinements")
    d = F * S
    rho = np.zeros(d * d, complex)
    rho[layout.full] = x
    rho = rho.reshape(d, d)
    return (rho + rho.conj().T) / 2
