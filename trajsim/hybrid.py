"""The hybrid implementation of Eq. (9) as an exact density-matrix reference (small N).

Spins in j = N/2 coupled to a cavity mode a by the Tavis-Cummings exchange of Eq. (8) in the
rotating frame, the cavity coupled to a squeezed reservoir and lossy:

    H = g (a^dag S- + a S+) + Delta_c a^dag a,
    d rho/dt = -i[H, rho] + kappa_sqz D[cosh r a + sinh r a^dag] rho + kappa_int D[a] rho,

on Fock(n_max) ⊗ V_{N/2} (row-major vec, as ``exact._lindblad_terms``).  Eliminating the
cavity when sqrt(N) g << kappa_sqz + kappa_int gives Eq. (11) with Gamma and gamma_coll of
Eqs. (12)-(13) (``cavity.squeezed_reservoir_rates``): a ≈ -2i g S- / kappa in the
Bogoliubov frame, so cosh r a + sinh r a^dag ≈ -2i g (cosh r S- - sinh r S+) / kappa.  The
corrections are of relative order (sqrt(N) g / kappa)^2 (tests/test_hybrid.py measures it).
The cavity's squeezed vacuum has <a^dag a> = sinh^2 r; ``truncation_weight`` is the population
of the top Fock level, the check that n_max is large enough.  This is issue 15's oracle; the
trajectory engine for Eq. (9) is not built yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve

from . import dicke
from .exact import expectations


@dataclass(frozen=True)
class Cavity:
    """Eq. (9) parameters: coupling g, squeezed-reservoir rate kappa_sqz and squeezing r,
    internal loss kappa_int, detuning Delta_c, Fock truncation n_max (levels 0 .. n_max)."""

    g: float
    kappa_sqz: float
    r: float
    kappa_int: float = 0.0
    Delta_c: float = 0.0
    n_max: int = 8


def operators(N: int, cavity: Cavity) -> dict[str, sp.csr_matrix]:
    """a, S-, S+, Sz on Fock(n_max) ⊗ V_{N/2} (cavity index first)."""
    fock = cavity.n_max + 1
    a = sp.diags(np.sqrt(np.arange(1, fock)), 1, format="csr")
    Jp, Jm, Jz = dicke.spin_matrices(N)
    eye_c, eye_s = sp.identity(fock, format="csr"), sp.identity(N + 1, format="csr")
    return {"a": sp.kron(a, eye_s, format="csr"), "S-": sp.kron(eye_c, sp.csr_matrix(Jm)),
            "S+": sp.kron(eye_c, sp.csr_matrix(Jp)), "Sz": sp.kron(eye_c, sp.csr_matrix(Jz))}


def liouvillian(N: int, cavity: Cavity) -> sp.csr_matrix:
    """The generator of Eq. (9) on row-major vec(rho): vec(A X B) = (A ⊗ B^T) vec X."""
    ops = operators(N, cavity)
    a, dim = ops["a"], ops["a"].shape[0]
    H = cavity.g * (a.T @ ops["S-"] + a @ ops["S+"]) + cavity.Delta_c * (a.T @ a)
    eye = sp.identity(dim, format="csr")
    G = -1j * (sp.kron(H, eye) - sp.kron(eye, H.T))
    for rate, L in ((cavity.kappa_sqz, np.cosh(cavity.r) * a + np.sinh(cavity.r) * a.T),
                    (cavity.kappa_int, a)):
        if rate > 0:
            LdL = L.T @ L  # L is real
            G = G + rate * (sp.kron(L, L) - 0.5 * sp.kron(LdL, eye) - 0.5 * sp.kron(eye, LdL.T))
    return G.tocsr()


def steady_state(N: int, cavity: Cavity) -> np.ndarray:
    """The steady state of Eq. (9) (dense, (n_max+1)(N+1) square): G vec(rho) = 0 with one
    equation replaced by Tr rho = 1 (sparse LU, as ``exact.stationary_observables``)."""
    G = liouvillian(N, cavity).tolil()
    dim = (cavity.n_max + 1) * (N + 1)
    G[0, :] = 0.0
    G[0, np.arange(dim) * (dim + 1)] = 1.0
    rhs = np.zeros(dim * dim, complex)
    rhs[0] = 1.0
    return spsolve(G.tocsc(), rhs).reshape(dim, dim)


def spin_state(rho: np.ndarray, N: int) -> np.ndarray:
    """The spins' reduced density matrix: the trace over the cavity."""
    fock = rho.shape[0] // (N + 1)
    return np.einsum("aiaj->ij", rho.reshape(fock, N + 1, fock, N + 1))


def spin_observables(rho: np.ndarray, N: int) -> dict:
    """``exact.expectations`` of the spins' reduced state (OBSERVABLES and 'xi2')."""
    return expectations({(N, N): spin_state(rho, N)})


def cavity_state(rho: np.ndarray, N: int) -> np.ndarray:
    """The cavity's reduced density matrix: the trace over the spins."""
    fock = rho.shape[0] // (N + 1)
    return np.einsum("iaja->ij", rho.reshape(fock, N + 1, fock, N + 1))


def photons(rho: np.ndarray, N: int) -> float:
    """<a^dag a>."""
    populations = np.real(np.diag(cavity_state(rho, N)))
    return float(np.arange(populations.size) @ populations)


def truncation_weight(rho: np.ndarray, N: int) -> float:
    """Population of the top Fock level n_max (small when the truncation is harmless)."""
    return float(np.real(cavity_state(rho, N)[-1, -1]))
