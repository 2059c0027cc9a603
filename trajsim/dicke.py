"""Dicke-basis algebra for permutation-invariant spin ensembles (docs/method.md).

A permutation-invariant state of N spins is a direct sum over total spin j of
``p_j rho_j (x) 1_{M_j} / d_N(j)``; every collective operator acts inside the spin-j irrep
V_j as the usual spin-j matrices.  Basis index ``k = j + m`` (m = -j..j), so index 0 is
``|j, -j>`` (all spins down).  Spins are stored as ``two_j = 2j`` (an integer).

Everything here is plain numpy: dense matrices for the exact references and tests, and the
sparse coefficient vectors that the trajectory engine uses.
"""

from __future__ import annotations

from math import comb, lgamma

import numpy as np
import scipy.sparse as sp

#: Observables recorded per trajectory and sample (docs/method.md): N, j, <S_a>, and the
#: symmetrised second moments <(S_a S_b + S_b S_a)/2>; ``Sx2`` is <Sx^2>, ``SxSy`` the xy one.
OBSERVABLES = ("N", "j", "Sx", "Sy", "Sz", "Sx2", "Sy2", "Sz2", "SxSy", "SxSz", "SySz")


def two_j_values(N: int) -> np.ndarray:
    """2j = N mod 2, N mod 2 + 2, ..., N: the total spins of N spin-1/2 (ascending)."""
    return np.arange(N % 2, N + 1, 2)


def m_values(two_j: int) -> np.ndarray:
    """Magnetic quantum numbers m = -j..j of V_j, in basis order."""
    return np.arange(two_j + 1) - two_j / 2


def raising_coefficients(two_j: int) -> np.ndarray:
    """a_k = <j, m+1| J+ |j, m> = sqrt(j(j+1) - m(m+1)) for k = 0..2j-1."""
    j = two_j / 2
    m = m_values(two_j)[:-1]
    return np.sqrt(j * (j + 1) - m * (m + 1))


def spin_matrices(two_j: int, sparse: bool = False) -> tuple:
    """(J+, J-, Jz) on V_j (Condon-Shortley phases), dense or CSR."""
    if sparse:
        Jp = sp.diags(raising_coefficients(two_j), -1, format="csr")
        return Jp, Jp.T.tocsr(), sp.diags(m_values(two_j), 0, format="csr")
    Jp = np.diag(raising_coefficients(two_j), -1)
    return Jp, Jp.T.copy(), np.diag(m_values(two_j))


def collective_operators(two_j: int, sparse: bool = False) -> dict:
    """Sx, Sy, Sz (complex) on V_j, dense or CSR."""
    Jp, Jm, Jz = spin_matrices(two_j, sparse)
    return {
        "Sx": (Jp + Jm).astype(complex) / 2,
        "Sy": (Jp - Jm) / 2j,
        "Sz": Jz.astype(complex),
    }


def Sigma(two_j: int, r: float) -> np.ndarray:
    """Jump operator of Eq. (2)-(3): Sigma(r) = cosh(r) S- - sinh(r) S+."""
    Jp, Jm, _ = spin_matrices(two_j)
    return np.cosh(r) * Jm - np.sinh(r) * Jp


def lmg(two_j: int, r: float) -> np.ndarray:
    """Antiferromagnetic LMG Hamiltonian, Eq. (15): e^{-2r} Sx^2 + e^{2r} Sy^2 + Sz = Sigma^dag Sigma."""
    S = collective_operators(two_j)
    H = np.exp(-2 * r) * S["Sx"] @ S["Sx"] + np.exp(2 * r) * S["Sy"] @ S["Sy"] + S["Sz"]
    return H.real


def multiplicity(N: int, two_j: int) -> int:
    """d_N(j) = C(N, N/2 - j) - C(N, N/2 - j - 1): how often V_j occurs among N spins (0 if not)."""
    if two_j < 0 or two_j > N or (N - two_j) % 2:
        return 0
    k = (N - two_j) // 2
    return comb(N, k) - (comb(N, k - 1) if k >= 1 else 0)


def multiplicity_ratio(N_to: int, two_j_to: int, N_from: int, two_j_from: int) -> float:
    """d_{N_to}(j_to) / d_{N_from}(j_from) without forming huge integers (N up to 10^4 and beyond)."""
    return multiplicity(N_to, two_j_to) / multiplicity(N_from, two_j_from)  # exact big-int division


def clebsch_gordan(two_j1: int, two_j: int, two_m: int, two_s: int) -> float:
    """<j1, m - s; s | j, m> for coupling j1 with a spin 1/2 (s = +-1/2) to total spin j = j1 +- 1/2."""
    j1, m, s = two_j1 / 2, two_m / 2, two_s / 2
    if abs(two_m - two_s) > two_j1:
        return 0.0
    if two_j == two_j1 + 1:
        return float(np.sqrt((j1 + 2 * s * m + 0.5) / (2 * j1 + 1)))
    if two_j == two_j1 - 1:
        return float(-2 * s * np.sqrt((j1 - 2 * s * m + 0.5) / (2 * j1 + 1)))
    raise ValueError("j must be j1 +- 1/2")


def cg_isometry(two_j1: int, two_j: int) -> np.ndarray:
    """E_{j1->j}: V_j -> V_{j1} (x) C^2 as a dense ((2j1+1)*2, 2j+1) matrix.

    Rows are ordered (k1, s) with s index 0 = down (s=-1/2), 1 = up (s=+1/2).
    """
    E = np.zeros(((two_j1 + 1) * 2, two_j + 1))
    for k in range(two_j + 1):
        two_m = 2 * k - two_j
        for si, two_s in enumerate((-1, 1)):
            k1 = (two_m - two_s + two_j1) // 2
            if 0 <= k1 <= two_j1:
                E[2 * k1 + si, k] = clebsch_gordan(two_j1, two_j, two_m, two_s)
    return E


def loss_targets(N: int, two_j: int) -> list[int]:
    """Spins 2*j1 of the remaining N-1 spins that a loss from block (N, j) can leave (d > 0)."""
    return [t for t in (two_j - 1, two_j + 1) if t >= 0 and multiplicity(N - 1, t) > 0]


def loss_kraus(N: int, two_j: int, two_j1: int, spin_up: bool) -> np.ndarray:
    """Spin-loss Kraus operator of docs/method.md: sqrt(d_{N-1}(j1)/d_N(j)) <s| E_{j1->j}.

    Dense ((2j1+1), (2j+1)) matrix; the four operators over j1 and s sum to the identity
    in the sense sum K^dag K = 1 (partial trace over one spin of rho_j (x) 1/d_N(j)).
    """
    E = cg_isometry(two_j1, two_j)
    weight = np.sqrt(multiplicity_ratio(N - 1, two_j1, N, two_j))
    return weight * E[int(spin_up)::2, :]


#: Local processes of Eq. (11): single-spin operator a (sigma_z or sigma_-), its change of m, and
#: the coefficient <s'|a|s> on the coupled spin (s' = s + dm).  Rates: gamma_phi/2 and gamma_rel.
LOCAL_PROCESSES = {"dephasing": (0, {-1: -1.0, 1: 1.0}), "relaxation": (-1, {1: 1.0})}


def local_targets(N: int, two_j: int) -> list[tuple[int, int]]:
    """(2 j1, 2 j') routes of a local jump from block (N, j): j1 = j -+ 1/2 (the other N-1 spins),
    j' = j1 -+ 1/2, keeping only those with d_{N-1}(j1) > 0 and d_N(j') > 0."""
    routes = []
    for two_j1 in (two_j - 1, two_j + 1):
        if two_j1 < 0 or multiplicity(N - 1, two_j1) == 0:
            continue
        for two_jp in (two_j1 - 1, two_j1 + 1):
            if two_jp >= 0 and multiplicity(N, two_jp) > 0:
                routes.append((two_j1, two_jp))
    return routes


def local_kraus_shift(N: int, two_j: int, process: str, two_j1: int,
                      two_jp: int) -> tuple[int, np.ndarray]:
    """Sparse local Kraus operator sqrt(N d_{N-1}(j1)/d_N(j)) P_{j'} (1 (x) a) E_{j1->j} (docs/method.md).

    Returns (offset, coeff): it maps |j, m> (index k) to coeff[k] |j', m + dm> (index k + offset).
    The rate (gamma_phi/2 or gamma_rel) is not included.
    """
    dm, a = LOCAL_PROCESSES[process]
    weight = np.sqrt(N * multiplicity_ratio(N - 1, two_j1, N, two_j))
    offset = (two_jp - two_j) // 2 + dm
    coeff = np.zeros(two_j + 1)
    for k in range(two_j + 1):
        two_m = 2 * k - two_j
        two_mp = two_m + 2 * dm
        if not 0 <= k + offset <= two_jp:
            continue
        for two_s, amp in a.items():  # s: the coupled spin before a; s + dm after
            two_sp = two_s + 2 * dm
            inside = abs(two_m - two_s) <= two_j1 and abs(two_mp - two_sp) <= two_j1
            if inside:
                coeff[k] += (amp * clebsch_gordan(two_j1, two_jp, two_mp, two_sp)
                             * clebsch_gordan(two_j1, two_j, two_m, two_s))
    return offset, weight * coeff


def local_kraus(N: int, two_j: int, process: str, two_j1: int, two_jp: int) -> np.ndarray:
    """Dense ((2j'+1), (2j+1)) form of ``local_kraus_shift``."""
    offset, coeff = local_kraus_shift(N, two_j, process, two_j1, two_jp)
    K = np.zeros((two_jp + 1, two_j + 1))
    for k, value in enumerate(coeff):
        if value:
            K[k + offset, k] = value
    return K


def log_binom(n: float, k: float) -> float:
    return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)


def sy_eigenbasis(two_j: int) -> tuple[np.ndarray, np.ndarray]:
    """S_y eigenvalues m_y and real R with |j, m_y> = sum_k i^k R[k, m] |j, k>.

    With P = diag(i^k), P^dag S_y P is real symmetric tridiagonal with off-diagonals -a_k/2.
    """
    from scipy.linalg import eigh_tridiagonal

    if two_j == 0:
        return np.zeros(1), np.ones((1, 1))
    my, R = eigh_tridiagonal(np.zeros(two_j + 1), -0.5 * raising_coefficients(two_j))
    return my, np.ascontiguousarray(R)


def dicke_state(two_j: int, two_m: int) -> np.ndarray:
    """|j, m> as a basis vector of V_j."""
    psi = np.zeros(two_j + 1)
    psi[(two_m + two_j) // 2] = 1.0
    return psi


def coherent_spin_state(two_j: int, theta: float, phi: float) -> np.ndarray:
    """|theta, phi> = (cos(theta/2)|up> + e^{i phi} sin(theta/2)|down>)^{(x) 2j} in V_j.

    <j,m|theta,phi> = sqrt(C(2j, j+m)) cos^{j+m}(theta/2) (e^{i phi} sin(theta/2))^{j-m};
    <S> = j (sin theta cos phi, sin theta sin phi, cos theta).  theta = pi is |j, -j>.
    """
    n_up = np.arange(two_j + 1)
    n_down = two_j - n_up
    c, s = np.cos(theta / 2), np.sin(theta / 2)
    with np.errstate(divide="ignore"):
        log_amp = np.array([0.5 * log_binom(two_j, k) for k in n_up])
        log_amp = log_amp + np.where(n_up > 0, n_up * np.log(abs(c)), 0.0)
        log_amp = log_amp + np.where(n_down > 0, n_down * np.log(abs(s)), 0.0)
    amp = np.exp(log_amp - log_amp.max()) * np.sign(c) ** n_up * np.sign(s) ** n_down
    psi = amp * np.exp(1j * phi * n_down)
    return psi / np.linalg.norm(psi)


def dark_state(two_j: int, r: float) -> np.ndarray:
    """Dark state of Sigma(r) in V_j for integer j, Eqs. (6)-(7).

    c_{-j+2k} ∝ C(j, k) / sqrt(C(2j, 2k)) tanh^k(r), odd-k coefficients zero; Sigma c = 0.
    """
    if two_j % 2:
        raise ValueError("a dark state exists only for integer j (even N)")
    j = two_j // 2
    psi = np.zeros(two_j + 1)
    if r == 0:
        psi[0] = 1.0
        return psi
    k = np.arange(j + 1)
    log_c = np.array([log_binom(j, q) - 0.5 * log_binom(two_j, 2 * q) for q in k])
    log_c = log_c + k * np.log(np.tanh(abs(r)))
    psi[::2] = np.exp(log_c - log_c.max()) * np.sign(r) ** k
    return psi / np.linalg.norm(psi)
