"""Model per block (N, j): the no-jump generator K, its eigen-decomposition and the jump channels.

docs/method.md: between jumps a trajectory evolves as d psi/dt = -(1/2) K psi with

    K = Gamma Sigma^dag Sigma + gamma_coll J+J- + gamma_rel (N/2 + Jz) + (gamma_phi/2) N

K couples m only to m and m +- 2, so it splits into two real symmetric tridiagonal sectors
(basis index k = j + m even / odd).  Each sector is diagonalised once, K = V diag(lambda) V^T,
and every jump operator is stored in these eigenbases (``A = V_out^T L V_in``), so a jump is
one dense product per occupied sector.

One-axis twisting (App. G, Eq. G1) adds H = chi (S^2 - Sz^2), diagonal in the Dicke basis:
d psi/dt = -(iH + K/2) psi.  When K is diagonal too (Gamma sinh 2r = 0, as in Eq. G1) the two
commute, V is the identity and the eigen-amplitudes pick up phases exp(-i E_k t) on top of the
decay, with the jump statistics unchanged; H with a non-diagonal K is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import eigh_tridiagonal, solve_triangular

from . import dicke


@dataclass(frozen=True)
class Rates:
    """Rates of Eq. (11) in units of the user's choice (Gamma is the Eq. (2) reservoir rate)."""

    Gamma: float = 1.0
    r: float = 0.0
    gamma_coll: float = 0.0
    gamma_phi: float = 0.0
    gamma_rel: float = 0.0
    chi: float = 0.0  # one-axis twisting chi (S^2 - Sz^2), Eq. (G1)

    def local(self) -> dict[str, float]:
        """Rates of the local processes of Eq. (11) that are switched on: dephasing
        (gamma_phi / 2) D[sigma_z] and relaxation gamma_rel D[sigma_-], per spin."""
        rates = {"dephasing": 0.5 * self.gamma_phi, "relaxation": self.gamma_rel}
        return {name: rate for name, rate in rates.items() if rate > 0}

    @classmethod
    def of(cls, model: dict) -> Rates:
        """The rates of a scenario's ``model`` section."""
        return cls(model["Gamma"], model["r"], model["gamma_coll"], model["gamma_phi"],
                   model["gamma_rel"], model["chi"])


#: In-block jump channels: name, the Rates field holding its rate, and the operator builder.
IN_BLOCK_CHANNELS = ("Sigma", "S-")


def channel_operator(name: str, two_j: int, rates: Rates) -> tuple[float, np.ndarray]:
    """(rate, operator) of an in-block jump channel: Gamma D[Sigma] or gamma_coll D[S-]."""
    if name == "Sigma":
        return rates.Gamma, dicke.Sigma(two_j, rates.r)
    return rates.gamma_coll, dicke.spin_matrices(two_j)[1]


def no_jump_generator(N: int, two_j: int, rates: Rates) -> tuple[np.ndarray, np.ndarray]:
    """K of docs/method.md as (diagonal, second off-diagonal K[k+2, k])."""
    a = dicke.raising_coefficients(two_j)  # <m+1|J+|m>
    a_below = np.concatenate(([0.0], a))  # <m|J+|m-1>: J+J-|m> = a_below^2 |m>
    a_above = np.concatenate((a, [0.0]))  # J-J+|m> = a_above^2 |m>
    ch, sh = np.cosh(rates.r), np.sinh(rates.r)
    m = dicke.m_values(two_j)
    diag = rates.Gamma * (ch**2 * a_below**2 + sh**2 * a_above**2)
    diag = diag + rates.gamma_coll * a_below**2 + rates.gamma_rel * (N / 2 + m)
    diag = diag + 0.5 * rates.gamma_phi * N
    off2 = -rates.Gamma * ch * sh * a[1:] * a[:-1]  # from -cs (S+^2 + S-^2)
    return diag, off2


def twisting_energies(two_j: int, rates: Rates) -> np.ndarray:
    """Diagonal of the one-axis-twisting Hamiltonian chi (S^2 - Sz^2) = chi (j(j+1) - m^2), Eq. (G1)."""
    j, m = two_j / 2, dicke.m_values(two_j)
    return rates.chi * (j * (j + 1) - m**2)


def sector_indices(two_j: int) -> tuple[np.ndarray, np.ndarray]:
    """Dicke indices k of the even (k = j+m even) and odd sectors."""
    k = np.arange(two_j + 1)
    return k[0::2], k[1::2]


def _eigh_sector(diag: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if diag.size == 0:
        return np.zeros(0), np.zeros((0, 0))
    if diag.size == 1:
        return diag.copy(), np.ones((1, 1))
    return eigh_tridiagonal(diag, off)


#: Eigenvalues of K below this fraction of the largest are recomputed with relative accuracy.
REFINE_BELOW = 1e-9


def sigma_bidiagonal(two_j: int, s: int, rates: Rates) -> np.ndarray:
    """sqrt(Gamma) Sigma from sector s to sector 1 - s (Dicke index k = s + 2i -> k -+ 1):
    bidiagonal, with K_s = B^T B when Gamma is the only rate; square for half-integer j."""
    a = dicke.raising_coefficients(two_j)
    a_below, a_above = np.concatenate(([0.0], a)), np.concatenate((a, [0.0]))
    src, dst = sector_indices(two_j)[s], sector_indices(two_j)[1 - s]
    B = np.zeros((dst.size, src.size))
    for i, k in enumerate(src):
        for target, coeff in ((k - 1, np.cosh(rates.r) * a_below[k]),
                              (k + 1, -np.sinh(rates.r) * a_above[k])):
            t = (target - (1 - s)) // 2
            if 0 <= target <= two_j and coeff != 0:
                B[t, i] = np.sqrt(rates.Gamma) * coeff
    return B


def _refine_small(two_j: int, s: int, rates: Rates, lam: np.ndarray, V: np.ndarray):
    """Recompute the eigenpairs of K_s = B^T B with lambda < REFINE_BELOW max(lambda) to high
    relative accuracy (half-integer j, Gamma the only rate).

    A symmetric eigensolver gets lambda only to ~eps max(lambda) absolutely: at N = 2001,
    r = 2.5 the smallest (2.6e-9, 1.7e-17 of the largest) came out as round-off.  But the
    inverse of a bidiagonal B is found by substitution with products only (no cancellation), so
    its entries are accurate to a few ulp, and its largest singular values 1/sqrt(lambda_min)
    ... come out of an SVD with relative accuracy: K_s^-1 = B^-1 B^-T = U S^2 U^T gives the
    small eigenvalues 1/S^2 and their eigenvectors U (Demmel & Kahan 1990 on bidiagonal
    singular values; docs/method.md)."""
    small = int(np.sum(lam < REFINE_BELOW * lam.max())) if lam.size > 1 else 0
    if small == 0:
        return lam, V
    B = sigma_bidiagonal(two_j, s, rates)
    if not np.all(np.diagonal(B)):  # B singular (r = 0: Sigma = S-): a true zero mode, which
        return lam, V               # the tridiagonal solver already has exactly
    with np.errstate(over="ignore", invalid="ignore"):
        B_inv = solve_triangular(B, np.identity(B.shape[0]), lower=bool(s))
    if not np.all(np.isfinite(B_inv)):  # entries beyond the float range: keep the solver's
        return lam, V
    U, S, _ = np.linalg.svd(B_inv)
    lam, V = lam.copy(), V.copy()
    lam[:small] = (1.0 / S[:small][::-1]) ** 2  # ascending, as eigh_tridiagonal returns them
    V[:, :small] = U[:, :small][:, ::-1]
    return lam, V


@dataclass
class Block:
    """One block (N, j): eigenpairs of K per sector and the in-block jump channels in those bases.

    ``lam[s]``, ``V[s]``: eigenvalues (clamped >= 0) and eigenvectors (columns, in the sector's
    Dicke sub-basis) of sector s; ``E[s]``: the twisting energies of those eigenvectors.
    ``channels``: name -> (A[0], A[1]); A[s] maps sector-s
    eigen-amplitudes to sector (1-s) eigen-amplitudes and includes sqrt(rate).
    """

    N: int
    two_j: int
    lam: tuple[np.ndarray, np.ndarray]
    V: tuple[np.ndarray, np.ndarray]
    E: tuple[np.ndarray, np.ndarray]
    channels: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.two_j + 1

    def to_eigenbasis(self, psi: np.ndarray) -> np.ndarray:
        """Dicke-basis vector -> eigen-amplitudes c = [V0^T psi_even, V1^T psi_odd]."""
        idx = sector_indices(self.two_j)
        return np.concatenate([self.V[s].T @ psi[idx[s]] for s in (0, 1)])

    def to_dicke(self, c: np.ndarray) -> np.ndarray:
        """Eigen-amplitudes -> Dicke-basis vector."""
        idx = sector_indices(self.two_j)
        n0 = idx[0].size
        psi = np.zeros(self.dim, dtype=c.dtype)
        psi[idx[0]] = self.V[0] @ c[:n0]
        psi[idx[1]] = self.V[1] @ c[n0:]
        return psi


def zero_threshold(lam_max: float, dim: int) -> float:
    """Eigenvalues below 64 D eps max(lambda) are zero to working precision (docs/method.md)."""
    return 64 * dim * np.finfo(float).eps * lam_max


def build_block(N: int, two_j: int, rates: Rates) -> Block:
    """Diagonalise K in both sectors and express the in-block channels in the eigenbases."""
    diag, off2 = no_jump_generator(N, two_j, rates)
    idx = sector_indices(two_j)
    if rates.chi == 0:
        pairs = [_eigh_sector(diag[i], off2[i[:-1]]) for i in idx]
    elif not off2.any():  # K and H both diagonal in the Dicke basis
        pairs = [(diag[i], np.identity(i.size)) for i in idx]
    else:
        raise ValueError("one-axis twisting (chi != 0) needs a diagonal no-jump generator: "
                         "Gamma sinh(2r) = 0")
    lam_max = max((float(p[0].max()) for p in pairs if p[0].size), default=0.0)
    tol = zero_threshold(lam_max, two_j + 1)
    pairs = [(np.where(p[0] < tol, 0.0, p[0]), p[1]) for p in pairs]
    if two_j % 2 and rates.Gamma > 0 and rates.chi == 0 and not (rates.gamma_coll
                                                                 or rates.local()):
        pairs = [_refine_small(two_j, s, rates, *pairs[s]) for s in (0, 1)]  # no zero modes
    lam = tuple(p[0] for p in pairs)
    V = tuple(np.ascontiguousarray(p[1]) for p in pairs)
    energies = twisting_energies(two_j, rates)
    block = Block(N, two_j, lam, V, tuple(energies[i] for i in idx))
    for name in IN_BLOCK_CHANNELS:
        rate, L = channel_operator(name, two_j, rates)
        if rate > 0:
            block.channels[name] = tuple(
                np.ascontiguousarray(np.sqrt(rate) * V[1 - s].T @ L[np.ix_(idx[1 - s], idx[s])] @ V[s])
                for s in (0, 1)
            )
    return block
