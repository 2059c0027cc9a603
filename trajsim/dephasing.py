"""Weak local dephasing as a perturbation of Eq. (2): the slow timescale of App. E.

With d rho / d tau = L0 rho + eps L1 rho, L0 = D[Sigma(r)] (Eq. E1), L1 = sum_k D[sigma_z^(k)/2]
(Eq. E2), eps = 2 gamma_phi / Gamma, every block j of L0 has its own steady state rho0^(j)
(dark state, Eqs. 6-7, or Eq. 16).  To first order in eps the populations p_j of these blocks
follow dp/dtau = eps M p with the tridiagonal rate matrix of Eq. (E3),

    M[j', j] = Tr[1^(j') L1 rho0^(j)]   (j' != j),   M[j, j] = -sum_j' M[j', j],

whose off-diagonal entries are the rates of Eqs. (E4)-(E5).  A dephasing jump keeps m, so
Tr[1^(j') L1 rho0^(j)] = (1/4) sum_routes sum_m |<j', m|K|j, m>|^2 <j, m|rho0^(j)|j, m> with the
local Kraus operators K of sigma_z (dicke.local_kraus_shift, multiplicities included).

- ``transition_rates``: M for N spins (index: dicke.two_j_values(N)).
- ``asymptotic_decay_rate``: smallest non-zero |eigenvalue| of M (Fig. S4(b)); the slowest
  rate of Eq. (11) is eps Gamma times it = 2 gamma_phi times it.
- ``steady_populations`` / ``steady_observables``: the null vector of M and the gamma_phi -> 0 steady
  state sum_j p_j rho0^(j) that it selects (observables as in exact.expectations).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from . import dicke, exact


def _rate_matrix(N: int, populations: list[np.ndarray]) -> np.ndarray:
    """M of Eq. (E3) from the diagonals <j, m|rho0^(j)|j, m> of the blocks' steady states, in the
    order of dicke.two_j_values(N)."""
    two_js = dicke.two_j_values(N)
    index = {int(two_j): a for a, two_j in enumerate(two_js)}
    M = np.zeros((two_js.size, two_js.size))
    for b, (two_j, P) in enumerate(zip(map(int, two_js), populations)):
        for two_j1, two_jp in dicke.local_targets(N, two_j):
            if two_jp != two_j:
                _, coeff = dicke.local_kraus_shift(N, two_j, "dephasing", two_j1, two_jp)
                M[index[two_jp], b] += 0.25 * np.sum(coeff**2 * P)
    M -= np.diag(M.sum(axis=0))
    return M


def transition_rates(N: int, r: float) -> np.ndarray:
    """M of Eq. (E3): M[a, b] is the rate from block two_j_values(N)[b] to [a] (Gamma = 1)."""
    populations = []
    for two_j in map(int, dicke.two_j_values(N)):
        weights, states = exact.steady_ensemble(N, two_j, r)
        populations.append(weights @ np.abs(states) ** 2)
    return _rate_matrix(N, populations)


def asymptotic_decay_rate(N: int, r: float) -> float:
    """Smallest non-zero |eigenvalue| of M (Fig. S4(b); 1/N at r = 0, -> 1/2 as r -> infinity).

    M is a birth-death generator, similar to a symmetric matrix, so its spectrum is real."""
    eigenvalues = np.sort(np.abs(scipy.linalg.eigvals(transition_rates(N, r)).real))
    return float(eigenvalues[1])


def _null_vector(M: np.ndarray) -> np.ndarray:
    """p with M p = 0, sum p = 1."""
    p = np.abs(scipy.linalg.null_space(M)[:, 0])
    return p / p.sum()


def steady_populations(N: int, r: float) -> np.ndarray:
    """p_j with M p = 0, sum p = 1: the block weights selected by gamma_phi -> 0 (all in
    j = N/2 at r = 0, where no rate leads down)."""
    return _null_vector(transition_rates(N, r))


def steady_observables(N: int, r: float) -> dict:
    """Observables of sum_j p_j rho0^(j), the steady state of Eq. (11) with Gamma and
    gamma_phi -> 0 (exact.expectations: moments, 'xi2', 'P_two_j')."""
    rho0 = {two_j: exact.steady_density_matrix(N, two_j, r)
            for two_j in map(int, dicke.two_j_values(N))}
    p = _null_vector(_rate_matrix(N, [np.diag(rho).real for rho in rho0.values()]))
    return exact.expectations({(N, two_j): w * rho for (two_j, rho), w in zip(rho0.items(), p)})
