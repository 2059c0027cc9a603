"""The hybrid implementation of Eq. (9) as an exact density-matrix reference (small N).

Spins in j = N/2 coupled to a cavity mode a by the Tavis-Cummings exchange of Eq. (8) in the
rotating frame, the cavity coupled to a squeezed reservoir and lossy:

    H = g (a^dag S- + a S+) + Delta_c a^dag a,
    d rho/dt = -i[H, rho] + kappa_sqz D[cosh r a + sinh r a^dag] rho + kappa_int D[a] rho,

on Fock(n_max) ⊗ V_{N/2} (row-major vec, as ``exact.block_liouvillian``); with the local rates
of Eq. (11) over every block (N, j), their jumps j-resolved as in the spin engine
(``steady_blocks``).  Eliminating the cavity when sqrt(N) g << kappa_sqz + kappa_int gives
Eq. (11) with Gamma and gamma_coll of Eqs. (12)-(13) (``cavity.squeezed_reservoir_rates``):
a ≈ -2i g S- / kappa in the Bogoliubov frame, so cosh r a + sinh r a^dag ≈
-2i g (cosh r S- - sinh r S+) / kappa.  The corrections are of relative order
(sqrt(N) g / kappa)^2 (tests/test_hybrid.py measures it).  The cavity's squeezed vacuum has
<a^dag a> = sinh^2 r; ``truncation_weight`` is the population of the top Fock level, the check
that n_max is large enough.  ``reservoir_populations`` (the cavity driven by its reservoirs
alone, in closed form) chooses n_max (``auto_n_max``) before a run; the trajectories of
``engines.hybrid`` record the weight of the top two levels as they go.  ``Cavity.basis``
'reservoir' cuts the cavity in the Fock basis of b instead (``mode``), where the squeezed
vacuum is the vacuum (docs/method.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaln

from . import dicke
from .exact import expectations, solve_with_trace
from .model import Rates


@dataclass(frozen=True)
class Cavity:
    """Eq. (9) parameters: coupling g, squeezed-reservoir rate kappa_sqz and squeezing r,
    internal loss kappa_int, detuning Delta_c, truncation n_max (levels 0 .. n_max) of the
    Fock basis of a or, with basis 'reservoir', of the reservoir's mode b (``mode``)."""

    g: float
    kappa_sqz: float
    r: float
    kappa_int: float = 0.0
    Delta_c: float = 0.0
    n_max: int = 8
    basis: str = "fock"

    @classmethod
    def of(cls, model: dict) -> Cavity:
        """The parameters of a resolved hybrid point's ``model`` section."""
        return cls(model["g"], model["kappa_sqz"], model["r"], model["kappa_int"],
                   model["Delta_c"], model["n_max"], model["cavity_basis"])


#: The cavity's bases (``Cavity.basis``): the Fock states of a, or those of the reservoir's mode
#: b = cosh r a + sinh r a^dag.  The reservoir alone leaves b in its vacuum, so a cut-off in b
#: needs only the photons the spins and the internal loss add, not the squeezed vacuum's tail
#: of a-photons (r = 1: n_max = 45 in a, 6 in b at kappa_int = 0.02).
BASES = ("fock", "reservoir")


#: Fock truncation: ``auto_n_max`` leaves below AUTO_TOP_WEIGHT of the cavity driven by its
#: reservoirs alone at n >= n_max - 1 (``reservoir_tail``); a run warns when its trajectories put
#: more than WARN_TOP_WEIGHT in the top two levels (the spin moments then err by ~1 %: about 100
#: times the weight, tests/test_hybrid.py); an n_max whose reservoir tail exceeds
#: REFUSE_TOP_WEIGHT is refused.
AUTO_TOP_WEIGHT = 1e-6
WARN_TOP_WEIGHT = 1e-4
REFUSE_TOP_WEIGHT = 1e-3
MIN_N_MAX = 4


def truncation_warning(top: float, n_max: int, holder: str) -> str | None:
    """The warning when ``holder`` (a run's trajectories, a steady state) puts ``top`` of the
    weight in the top two Fock levels, above WARN_TOP_WEIGHT; else None."""
    if top <= WARN_TOP_WEIGHT:
        return None
    return (f"{holder} {top:.2g} of the weight in the top two Fock levels of model.n_max = "
            f"{n_max}: the cut-off distorts it (at 2e-4 a steady <Sy^2> was 2 % off); raise "
            "model.n_max")


def annihilation(n_max: int) -> np.ndarray:
    """The truncated a on Fock(n_max): a|n> = sqrt(n) |n-1> (a^dag = a.T)."""
    return np.diag(np.sqrt(np.arange(1.0, n_max + 1)), 1)


def mode(cavity: Cavity) -> np.ndarray:
    """The matrix of a in the cavity's basis cut at n_max (a^dag = its transpose): the
    truncated annihilation operator, or for 'reservoir' a = cosh r b - sinh r b^dag with b
    truncated (every operator keeps its form: cosh r a + sinh r a^dag is b itself)."""
    b = annihilation(cavity.n_max)
    if cavity.basis == "fock":
        return b
    return np.cosh(cavity.r) * b - np.sinh(cavity.r) * b.T


def reservoir_vacuum(cavity: Cavity) -> np.ndarray:
    """The reservoir's vacuum b|0_b> = 0 (where a trajectory's cavity starts) in the cavity's
    basis: ``squeezed_vacuum`` in the Fock basis of a, |0> in that of b."""
    if cavity.basis == "fock":
        return squeezed_vacuum(cavity.n_max, cavity.r)
    return np.eye(cavity.n_max + 1)[0]


def squeezed_vacuum(n_max: int, r: float) -> np.ndarray:
    """The cavity state b|0_b> = 0 of the reservoir mode b = cosh r a + sinh r a^dag (the squeezed
    vacuum the reservoir alone leaves in a lossless cavity), truncated to n_max and normalised:
    c_{n+1} = -tanh r sqrt(n / (n+1)) c_{n-1}."""
    c = np.zeros(n_max + 1)
    c[0] = 1.0
    for n in range(1, n_max, 2):
        c[n + 1] = -np.tanh(r) * np.sqrt(n / (n + 1)) * c[n - 1]
    return c / np.linalg.norm(c)


def reservoir_populations(kappa_sqz: float, kappa_int: float, r: float, n_max: int,
                          basis: str = "fock") -> np.ndarray:
    """P(n), n = 0 .. n_max, of the cavity's steady state under kappa_sqz D[cosh r a + sinh r a^dag]
    + kappa_int D[a] alone (no spins, no truncation): the Gaussian state with
    <a^dag a> = n_th = kappa_sqz sinh^2 r / kappa and <a^2> = -m, m = kappa_sqz sinh r cosh r / kappa
    (kappa = kappa_sqz + kappa_int), in the Fock basis of a or (basis 'reservoir') of
    b = c a + s a^dag (c = cosh r, s = sinh r): <b^dag b> = c^2 n_th + s^2 (n_th + 1) - 2 c s m,
    |<b^2>| = |c s (2 n_th + 1) - (c^2 + s^2) m| (both 0 at kappa_int = 0).  A Gaussian state
    with <n> and |<b^2>| = m has the generating function sum P(n) z^n
    [(1 + x (<n> + m)) (1 + x (<n> - m))]^(-1/2), x = 1 - z: the convolution of two series
    (1 + alpha)^(-1/2) sum_k binom(2k, k) (beta / 4)^k z^k, beta = alpha / (1 + alpha)."""
    kappa, n = kappa_sqz + kappa_int, np.arange(n_max + 1)
    n_th = kappa_sqz * np.sinh(r) ** 2 / kappa
    m = kappa_sqz * abs(np.sinh(r) * np.cosh(r)) / kappa
    if basis == "reservoir":
        c, s = np.cosh(r), np.sinh(abs(r))
        n_th, m = (max(0.0, c * c * n_th + s * s * (n_th + 1) - 2 * c * s * m),
                   abs(c * s * (2 * n_th + 1) - (c * c + s * s) * m))
    central = np.exp(gammaln(2 * n + 1) - 2 * gammaln(n + 1) - n * np.log(4.0))  # binom(2k,k)/4^k
    series = [central * (alpha / (1 + alpha)) ** n / np.sqrt(1 + alpha)
              for alpha in (n_th + m, n_th - m)]
    return np.convolve(*series)[: n_max + 1]


def reservoir_tail(kappa_sqz: float, kappa_int: float, r: float, n_max: int,
                   basis: str = "fock") -> float:
    """The weight of ``reservoir_populations`` at n >= n_max - 1: what a cut-off at n_max leaves
    out or crowds into its top two levels (a squeezed vacuum fills even levels only, so the
    top level alone can look empty)."""
    p = reservoir_populations(kappa_sqz, kappa_int, r, n_max, basis)
    return max(0.0, 1.0 - float(p[:-2].sum()))


def auto_n_max(kappa_sqz: float, kappa_int: float, r: float, largest: int,
               basis: str = "fock") -> int | None:
    """The smallest n_max >= MIN_N_MAX with ``reservoir_tail`` below AUTO_TOP_WEIGHT, or None if
    that needs more than ``largest``."""
    tails = 1.0 - np.cumsum(reservoir_populations(kappa_sqz, kappa_int, r, largest, basis))
    fine = np.flatnonzero(tails[MIN_N_MAX - 2:-1] < AUTO_TOP_WEIGHT)  # tails[n_max - 2]
    return int(fine[0]) + MIN_N_MAX if fine.size else None


#: The cavity's per-sample columns: <a^dag a>, the quadratures X = (a + a^dag)/2 and
#: P = (a - a^dag)/2i (<a> = <X> + i <P>), their squares, and the weight of the top two levels.
CAVITY_OBSERVABLES = ("n_cav", "X_cav", "P_cav", "X2_cav", "P2_cav", "top_fock")


def cavity_observables(cavity: Cavity) -> dict[str, np.ndarray]:
    """The matrices of CAVITY_OBSERVABLES in the cavity's basis (a from ``mode``; 'top_fock':
    the top two levels of that basis)."""
    a, n_max = mode(cavity), cavity.n_max
    X, P = (a + a.T) / 2, (a - a.T) / 2j
    top = np.zeros(n_max + 1)
    top[-2:] = 1.0
    return {"n_cav": a.T @ a, "X_cav": X, "P_cav": P, "X2_cav": X @ X, "P2_cav": P @ P,
            "top_fock": np.diag(top)}


def operators(two_j: int, cavity: Cavity) -> dict[str, sp.csr_matrix]:
    """a, S-, S+, Sz on the cavity's basis ⊗ V_j (cavity index first; a from ``mode``)."""
    fock = cavity.n_max + 1
    a = sp.csr_matrix(mode(cavity))
    Jp, Jm, Jz = dicke.spin_matrices(two_j)
    eye_c, eye_s = sp.identity(fock, format="csr"), sp.identity(two_j + 1, format="csr")
    return {"a": sp.kron(a, eye_s, format="csr"), "S-": sp.kron(eye_c, sp.csr_matrix(Jm)),
            "S+": sp.kron(eye_c, sp.csr_matrix(Jp)), "Sz": sp.kron(eye_c, sp.csr_matrix(Jz))}


#: No local dephasing or relaxation (only ``Rates.local()``, gamma_rel and gamma_phi are read).
NO_LOCAL = Rates()


def cavity_channels(cavity: Cavity) -> list[tuple[str, float, np.ndarray]]:
    """(name, rate, L) of the cavity's jumps on its own factor: the squeezed reservoir
    'cavity_sqz' (kappa_sqz, cosh r a + sinh r a^dag) and the internal loss 'cavity_int'
    (kappa_int, a), a from ``mode``; those of zero rate left out."""
    a = mode(cavity)
    return [(name, rate, L) for name, rate, L in (
        ("cavity_sqz", cavity.kappa_sqz, np.cosh(cavity.r) * a + np.sinh(cavity.r) * a.T),
        ("cavity_int", cavity.kappa_int, a)) if rate > 0]


def no_jump_generator(N: int, two_j: int, cavity: Cavity, rates: Rates = NO_LOCAL
                      ) -> sp.csr_matrix:
    """A = -i H_eff of Eq. (9) in block (N, j), on Fock ⊗ V_j: H = g (a^dag S- + a S+) +
    Delta_c a^dag a, and the decay sum_c L_c^dag L_c of the cavity channels and of the local
    rates over every route (gamma_rel (N/2 + S_z) + gamma_phi N / 2)."""
    a = mode(cavity)
    Jp, Jm, Jz = dicke.spin_matrices(two_j, sparse=True)
    eye_c, eye_s = np.identity(a.shape[0]), sp.identity(two_j + 1, format="csr")
    cavity_part = 1j * cavity.Delta_c * (a.T @ a) + 0.5 * sum(
        (rate * (L.T @ L) for _, rate, L in cavity_channels(cavity)), np.zeros_like(a))
    spin_part = 0.5 * (rates.gamma_rel * (N / 2 * eye_s + Jz) + 0.5 * rates.gamma_phi * N * eye_s)
    A = -(1j * cavity.g * (sp.kron(a.T, Jm) + sp.kron(a, Jp)) + sp.kron(cavity_part, eye_s)
          + sp.kron(eye_c, spin_part)).tocsr()
    A.eliminate_zeros()
    A.sort_indices()
    return A


def liouvillian(N: int, cavity: Cavity, two_j: int | None = None,
                rates: Rates = NO_LOCAL) -> sp.csr_matrix:
    """The generator of Eq. (9) on row-major vec(rho) in the block (N, j) (j = N/2 unless
    given): vec(A X B) = (A ⊗ B^T) vec X, so the no-jump part A rho + rho A^dag is
    A ⊗ 1 + 1 ⊗ A^* (``no_jump_generator``), and each jump L rho L^dag is L ⊗ L (L real).
    With local rates (``rates.local()``) it holds their decay and the local jumps that stay
    in j; ``local_jumps`` holds those that leave it."""
    two_j = N if two_j is None else two_j
    A = no_jump_generator(N, two_j, cavity, rates)
    eye, eye_s = sp.identity(A.shape[0], format="csr"), sp.identity(two_j + 1, format="csr")
    G = sp.kron(A, eye) + sp.kron(eye, A.conj())
    jumps = [np.sqrt(rate) * sp.kron(sp.csr_matrix(L), eye_s)
             for _, rate, L in cavity_channels(cavity)]
    for L in jumps + [K for target, K in local_jumps(N, two_j, cavity, rates) if target == two_j]:
        G = G + sp.kron(L, L)
    return G.tocsr()


def local_jumps(N: int, two_j: int, cavity: Cavity, rates: Rates) -> list:
    """(2j', sqrt(rate) 1 ⊗ K): every j-resolved local jump from block (N, j), as in the spin
    engine (``dicke.local_kraus``), on Fock ⊗ V_j."""
    eye_c = sp.identity(cavity.n_max + 1, format="csr")
    return [(two_jp, np.sqrt(rate) * sp.kron(eye_c, sp.csr_matrix(
                dicke.local_kraus(N, two_j, name, two_j1, two_jp)), format="csr"))
            for name, rate in rates.local().items()
            for two_j1, two_jp in dicke.local_targets(N, two_j)]


def generator_over_j(N: int, cavity: Cavity, rates: Rates, keys: list[tuple[int, int]]
                     ) -> sp.csr_matrix:
    """The generator of Eq. (9) with the local rates of Eq. (11) on the blocks ``keys``
    ((N, 2j): every j of N spins, or j = N/2 alone without local rates), their row-major vecs
    concatenated in that order: ``liouvillian`` in each, the local jumps between them."""
    index = {key: i for i, key in enumerate(keys)}
    blocks = [[None] * len(keys) for _ in keys]
    for i, (_, two_j) in enumerate(keys):
        blocks[i][i] = liouvillian(N, cavity, two_j, rates)
        for target, K in local_jumps(N, two_j, cavity, rates):
            if target != two_j:
                row = index[(N, target)]
                term = sp.kron(K, K)
                blocks[row][i] = term if blocks[row][i] is None else blocks[row][i] + term
    return sp.bmat(blocks, format="csr")


def steady_blocks(N: int, cavity: Cavity, rates: Rates) -> dict[tuple[int, int], np.ndarray]:
    """The steady state of Eq. (9) with the local rates of Eq. (11) over every j of N spins:
    {(N, 2j): p_j rho_j} (sparse LU of ``generator_over_j``, the first equation replaced by
    the total trace).  Without local rates see ``steady_state`` (j = N/2 alone)."""
    keys = [(N, int(t)) for t in dicke.two_j_values(N)[::-1]]
    dims = [(cavity.n_max + 1) * (two_j + 1) for _, two_j in keys]
    offsets = np.concatenate(([0], np.cumsum(np.square(dims))))
    diagonals = np.concatenate([o + np.arange(d) * (d + 1) for o, d in zip(offsets, dims)])
    vec = solve_with_trace(generator_over_j(N, cavity, rates, keys), diagonals)
    return {key: vec[o:o + d * d].reshape(d, d) for key, o, d in zip(keys, offsets, dims)}


def steady_state(N: int, cavity: Cavity) -> np.ndarray:
    """The steady state of Eq. (9) (dense, (n_max+1)(N+1) square): G vec(rho) = 0 with one
    equation replaced by Tr rho = 1 (sparse LU), solved among the entries rho[p, p'] whose
    states p = (n, k), p' have the same parity of n + k: H and every L^dag L keep it, every
    L rho L^dag flips both, so G maps them to themselves and the rest of rho decays.  About
    4 s at N = 8, n_max = 15 (the LU's fill-in grows fast: 65 s at N = 16)."""
    dim = (cavity.n_max + 1) * (N + 1)
    parity = (np.arange(cavity.n_max + 1)[:, None] + np.arange(N + 1)[None, :]).ravel() % 2
    kept = np.flatnonzero((parity[:, None] == parity[None, :]).ravel())
    rho = np.zeros(dim * dim, complex)  # kept[0] = 0: rho[0, 0] is among the kept entries
    rho[kept] = solve_with_trace(liouvillian(N, cavity)[kept][:, kept],
                                 np.flatnonzero(np.isin(kept, np.arange(dim) * (dim + 1))))
    return rho.reshape(dim, dim)


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


def photons(rho: np.ndarray, N: int, cavity: Cavity | None = None) -> float:
    """<a^dag a> (rho in the basis of ``cavity``, by default the Fock basis of a)."""
    rho_c = cavity_state(rho, N)
    a = annihilation(len(rho_c) - 1) if cavity is None else mode(cavity)
    return float(np.trace(rho_c @ a.T @ a).real)


def truncation_weight(rho: np.ndarray, N: int) -> float:
    """Population of the top Fock level n_max (small when the truncation is harmless)."""
    return float(np.real(cavity_state(rho, N)[-1, -1]))
