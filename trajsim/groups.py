"""Ensembles of M classes of identical spins (inhomogeneous broadening, unequal couplings):
the product of the classes' symmetric blocks, as exact density matrices (issue 23's reference).

Class k holds N_k spins with detuning delta_k and coupling weight w_k.  Without local rates each
class stays symmetric, so the state lives in V_{j_1} ⊗ ... ⊗ V_{j_M}, j_k = N_k / 2, of
dimension prod_k (N_k + 1), and Eq. (2) with disorder reads (in the reservoir's rotating frame)

    d rho / dt = -i [H, rho] + Gamma D[Sigma] rho + gamma_coll D[S_w-] rho,
    H = sum_k delta_k S_z^(k),   Sigma = sum_k w_k (cosh r S_-^(k) - sinh r S_+^(k)),
    S_w- = sum_k w_k S_-^(k).

Observables are those of the total spin S = sum_k S^(k).  With every delta_k = 0 and w_k = 1,
Sigma acts on the total spin only and the product space splits into blocks of total J; the
symmetric block J = N/2 is Eq. (2) itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np
import scipy.sparse as sp

from . import dicke
from .exact import NotUnique, solve_with_trace
from .model import Rates
from .squeezing import moments_from_columns, wineland_xi2

__all__ = ["DISTRIBUTIONS", "Group", "broadening", "dark_states", "dimension", "embedded",
           "liouvillian", "moments", "operators", "pair_dark_state", "secular_steady_state",
           "steady_state"]

#: Inhomogeneous broadenings (``broadening``) and what their width is: the standard deviation,
#: the half width at half maximum, the half width of the support.
DISTRIBUTIONS = {"gaussian": "standard deviation", "lorentzian": "half width at half maximum",
                 "uniform": "half width: detunings on [-width, width]"}


@dataclass(frozen=True)
class Group:
    """A class of N identical spins with detuning ``delta`` and coupling weight ``weight``."""

    N: int
    delta: float = 0.0
    weight: float = 1.0


def broadening(distribution: str, width: float, M: int) -> np.ndarray:
    """The detunings of M classes of equal size for a broadening of this width (DISTRIBUTIONS):
    the distribution cut into M bins of probability 1/M at its quantiles, each class at its
    bin's mean or, as the Lorentzian's outer bins have no mean, its bin's median.  In closed
    form at unit width, then scaled: Gaussian M (phi(z_i) - phi(z_i+1)) between the quantiles
    z_i = Phi^-1(i/M), uniform the bins' midpoints, Lorentzian tan(pi ((i + 1/2)/M - 1/2)).
    Symmetric about 0 by construction."""
    from scipy import stats
    i = np.arange(M)
    if width == 0:
        return np.zeros(M)
    if distribution == "lorentzian":
        unit = stats.cauchy.ppf((i + 0.5) / M)
    elif distribution == "gaussian":
        density = stats.norm.pdf(stats.norm.ppf(np.arange(M + 1) / M))  # 0 at -inf and inf
        unit = M * (density[:-1] - density[1:])
    else:
        unit = (2 * i + 1) / M - 1.0
    return width * (unit - unit[::-1]) / 2  # exactly antisymmetric


def dimension(groups: tuple[Group, ...]) -> int:
    return int(np.prod([g.N + 1 for g in groups]))


def embedded(groups: tuple[Group, ...], k: int, op: np.ndarray) -> sp.csr_matrix:
    """1 ⊗ ... ⊗ op (on class k) ⊗ ... ⊗ 1."""
    factors = [sp.csr_matrix(op) if i == k else sp.identity(g.N + 1, format="csr")
               for i, g in enumerate(groups)]
    return reduce(lambda a, b: sp.kron(a, b, format="csr"), factors)


def operators(groups: tuple[Group, ...], r: float) -> dict[str, sp.csr_matrix]:
    """'Sigma', 'S-w' (the weighted S_-), 'H', and the total 'Sx', 'Sy', 'Sz' on the product
    space (class 0 the slowest index)."""
    dim = dimension(groups)
    ops = {name: sp.csr_matrix((dim, dim), dtype=complex)
           for name in ("Sigma", "S-w", "H", "Sx", "Sy", "Sz")}
    for k, g in enumerate(groups):
        Jp, Jm, Jz = (embedded(groups, k, M) for M in dicke.spin_matrices(g.N))
        ops["Sigma"] += g.weight * (np.cosh(r) * Jm - np.sinh(r) * Jp)
        ops["S-w"] += g.weight * Jm
        ops["H"] += g.delta * Jz
        ops["Sx"] += (Jp + Jm) / 2
        ops["Sy"] += (Jp - Jm) / 2j
        ops["Sz"] += Jz
    return {name: op.tocsr() for name, op in ops.items()}


def liouvillian(groups: tuple[Group, ...], rates: Rates) -> sp.csr_matrix:
    """The generator above on row-major vec(rho): vec(A X B) = (A ⊗ B^T) vec X."""
    if rates.local() or rates.chi:
        raise ValueError("grouped ensembles: local rates and one-axis twisting are not "
                         "supported")
    ops = operators(groups, rates.r)
    eye = sp.identity(dimension(groups), format="csr")
    G = -1j * (sp.kron(ops["H"], eye) - sp.kron(eye, ops["H"].T))
    for rate, L in ((rates.Gamma, ops["Sigma"]), (rates.gamma_coll, ops["S-w"])):
        if rate > 0:
            G = G + rate * _dissipator(L, eye)
    return G.tocsr()


def _dissipator(L: sp.spmatrix, eye: sp.spmatrix) -> sp.spmatrix:
    """D[L] on row-major vec(rho): L rho L^dag - {L^dag L, rho} / 2."""
    LdL = (L.conj().T @ L).tocsr()
    return sp.kron(L, L.conj()) - 0.5 * sp.kron(LdL, eye) - 0.5 * sp.kron(eye, LdL.T)


def steady_state(groups: tuple[Group, ...], rates: Rates) -> np.ndarray:
    """The steady state (dense), solved among the entries rho[p, p'] with even M_z(p) - M_z(p')
    (exp(i pi S_z) maps Sigma to -Sigma, so the generator keeps them and the rest decays), with
    one equation replaced by Tr rho = 1 (sparse LU).  It need not be unique: identical classes
    have one in every block of total J, and unequal weights without detunings leave several
    dark states (Sigma has a 3-dimensional kernel for 6 + 6 spins at w = 1, 0.5); a solution
    that is not a density matrix (not Hermitian, or an eigenvalue below -1e-9, to 1e-9), or an
    exactly singular solve, raises ``exact.NotUnique``; so do two identical classes (equal
    delta and weight) at once, whose union's blocks of total spin each keep a steady state
    (the solve found that out only when a pivot came out exactly zero: at Gamma = 1 it returned
    one of them for classes of 2 and 1)."""
    if len({(g.delta, g.weight) for g in groups}) < len(groups):
        raise NotUnique("groups.steady_state: the steady state is not unique (two classes with "
                        "the same delta and weight: one steady state per block of their total "
                        "spin); merge them into one class")
    dim = dimension(groups)
    two_m = (2 * operators(groups, 0.0)["Sz"].diagonal().real).round().astype(int)
    kept = np.flatnonzero(((two_m[:, None] - two_m[None, :]) % 4 == 0).ravel())
    rho = np.zeros(dim * dim, complex)  # kept[0] = 0: rho[0, 0] is among the kept entries
    rho[kept] = solve_with_trace(liouvillian(groups, rates)[kept][:, kept],
                                 np.flatnonzero(np.isin(kept, np.arange(dim) * (dim + 1))))
    return _density_matrix(rho.reshape(dim, dim), "groups.steady_state")


def _density_matrix(rho: np.ndarray, where: str) -> np.ndarray:
    """rho, if it is a density matrix (Hermitian, eigenvalues >= -1e-9, to 1e-9); else the
    solve picked one of several steady states, or the one steady state is singular to working
    precision (nearly identical classes: 4 + 2 spins at r = 0.5 with weights 1 and 1 - eps
    relax at 0.067 eps^2 Gamma at the slowest, 1.4e-11 of the fastest at eps = 1e-4):
    exact.NotUnique."""
    if (np.abs(rho - rho.conj().T).max() > 1e-9
            or np.linalg.eigvalsh((rho + rho.conj().T) / 2).min() < -1e-9):
        raise NotUnique(f"{where}: the steady state is not unique, or too nearly degenerate to "
                        "compute (the solve gave a matrix that is not a density matrix: are two "
                        "classes nearly identical?)")
    return rho


def secular_steady_state(groups: tuple[Group, Group], r: float) -> np.ndarray:
    """The steady state (dense) of two classes at opposite detunings +-delta in the limit
    |delta| >> the dissipative rates: in the frame of H, Sigma = e^{-i delta t} L_1 +
    e^{i delta t} L_2 with L_1 = w_0 cosh r S_-^(0) - w_1 sinh r S_+^(1) and L_2 = w_1 cosh r
    S_-^(1) - w_0 sinh r S_+^(0), and the cross terms average out (the secular limit):

        d rho / dt = Gamma (D[L_1] + D[L_2]) rho.

    Both L change m_0 - m_1 by one, so the generator keeps the entries with equal m_0 - m_1 on
    both sides (where the steady state lies; it then commutes with H, so it is the lab frame's
    too), a few thousand unknowns for classes of 20.  Corrections are ~delta^-2
    (tests/test_groups.py).  Raises exact.NotUnique as ``steady_state``."""
    (a, b), (c, s) = groups, (np.cosh(r), np.sinh(r))
    if a.delta == 0 or a.delta != -b.delta:
        raise ValueError("groups.secular_steady_state: two classes at opposite detunings "
                         "+-delta, delta != 0")
    dim = dimension(groups)
    Jp0, Jm0, _ = (embedded(groups, 0, M) for M in dicke.spin_matrices(a.N))
    Jp1, Jm1, _ = (embedded(groups, 1, M) for M in dicke.spin_matrices(b.N))
    eye = sp.identity(dim, format="csr")
    G = sp.csr_matrix((dim * dim, dim * dim), dtype=complex)
    for L in (a.weight * c * Jm0 - b.weight * s * Jp1, b.weight * c * Jm1 - a.weight * s * Jp0):
        G = G + _dissipator(L, eye)
    k0, k1 = np.divmod(np.arange(dim), b.N + 1)
    difference = k0 - k1
    kept = np.flatnonzero((difference[:, None] == difference[None, :]).ravel())
    rho = np.zeros(dim * dim, complex)  # kept[0] = 0: rho[0, 0] is among the kept entries
    rho[kept] = solve_with_trace(G.tocsr()[kept][:, kept],
                                 np.flatnonzero(np.isin(kept, np.arange(dim) * (dim + 1))))
    return _density_matrix(rho.reshape(dim, dim), "groups.secular_steady_state")


def dark_states(groups: tuple[Group, ...], r: float) -> np.ndarray:
    """The states psi with Sigma psi = 0 and H psi = 0 (columns, orthonormal): each is a pure
    steady state (Gamma D[Sigma] and -i[H, .] both vanish on |psi><psi|).  Symmetric equal-size
    classes (a broadening cut at its quantiles) have exactly one for even N, the steady state
    when that is unique (docs/validation.md).  The null space of K = Sigma^dag Sigma + H^2
    (Hermitian, >= 0) by shift-invert Lanczos (sparse LU of K + 1), eigenvalues below
    DARK_TOL ||K||_inf."""
    from scipy.sparse.linalg import eigsh
    ops = operators(groups, r)
    K = (ops["Sigma"].conj().T @ ops["Sigma"] + ops["H"] @ ops["H"]).tocsc()
    scale = max(float(abs(K).sum(axis=1).max()), 1.0)
    if K.shape[0] <= 16:
        values, vectors = np.linalg.eigh(K.toarray())
    else:
        values, vectors = eigsh(K, k=4, sigma=-1.0, which="LM")
    return vectors[:, values < DARK_TOL * scale]


def pair_dark_state(n: int, r: float) -> np.ndarray:
    """The dark state of two classes of n spins at opposite detunings +-delta and equal weights,
    on V_{n/2} ⊗ V_{n/2} (class 0 the slower index): a two-mode squeezed state of the classes,

        psi = sum_k tanh(r)^k |k>|k> / norm     (Dicke index k = j + m in each class),

    for every delta.  (S_z^(1) - S_z^(2)) psi = 0, and Sigma psi = 0 term by term: on
    |k-1>|k> cosh r <k-1|S-|k> c_k = sinh r <k|S+|k-1> c_{k-1}, the two matrix elements equal.
    A broadening cut symmetrically into an even number of classes has the product of such pairs
    (class k with class M - 1 - k) as its dark state (tests/test_groups.py)."""
    c = np.tanh(r) ** np.arange(n + 1, dtype=float)
    psi = np.zeros((n + 1, n + 1))
    psi[np.diag_indices(n + 1)] = c / np.linalg.norm(c)
    return psi.ravel()


#: Eigenvalues of Sigma^dag Sigma + H^2 below this (relative) are dark (``dark_states``).
DARK_TOL = 1e-10


def moments(rho: np.ndarray, groups: tuple[Group, ...]) -> dict[str, float]:
    """<S_a>, <S_a^2> and the symmetrised <S_a S_b> of the total spin, and the Wineland xi2."""
    S = operators(groups, 0.0)
    out = {}
    for a in "xyz":
        out[f"S{a}"] = float(np.real(np.sum(rho.T * S[f"S{a}"].toarray())))
    for a, b in (("x", "x"), ("y", "y"), ("z", "z"), ("x", "y"), ("x", "z"), ("y", "z")):
        A, B = S[f"S{a}"], S[f"S{b}"]
        name = f"S{a}2" if a == b else f"S{a}S{b}"
        out[name] = float(np.real(np.sum(rho.T * ((A @ B + B @ A) / 2).toarray())))
    out["N"] = float(sum(g.N for g in groups))
    mean, second = moments_from_columns(out)
    out["xi2"] = float(wineland_xi2(out["N"], mean, second))
    return out
