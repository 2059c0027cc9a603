"""Dicke-basis algebra: spin matrices, multiplicities, Clebsch-Gordan, spin-loss Kraus operators."""

import numpy as np
import pytest

from trajsim import dicke


@pytest.mark.parametrize("two_j", [1, 2, 5, 8])
def test_spin_commutators(two_j):
    S = dicke.collective_operators(two_j)
    comm = S["Sx"] @ S["Sy"] - S["Sy"] @ S["Sx"]
    assert np.allclose(comm, 1j * S["Sz"])
    casimir = sum(S[a] @ S[a] for a in S)
    assert np.allclose(casimir, two_j / 2 * (two_j / 2 + 1) * np.eye(two_j + 1))


@pytest.mark.parametrize("N", [1, 2, 5, 10, 31])
def test_multiplicities_fill_hilbert_space(N):
    assert sum(dicke.multiplicity(N, tj) * (tj + 1) for tj in range(N + 1)) == 2**N


@pytest.mark.parametrize("two_j, r", [(6, 0.7), (9, 1.1), (40, 2.5)])
def test_lmg_is_sigma_dagger_sigma(two_j, r):
    S = dicke.Sigma(two_j, r)
    assert np.allclose(dicke.lmg(two_j, r), S.T @ S)


@pytest.mark.parametrize("two_j, r", [(2, 0.3), (10, 1.3), (200, 2.5),
                                      pytest.param(2000, 5.0, marks=pytest.mark.slow)])
def test_dark_state_is_annihilated_by_sigma(two_j, r):
    psi = dicke.dark_state(two_j, r)
    S = dicke.Sigma(two_j, r)
    assert np.linalg.norm(S @ psi) < 1e-12 * np.linalg.norm(S, 2)
    assert np.all(psi[1::2] == 0)


def test_coherent_spin_state_points_along_theta_phi():
    two_j, theta, phi = 12, 1.1, 0.4
    psi = dicke.coherent_spin_state(two_j, theta, phi)
    S = dicke.collective_operators(two_j)
    mean = [np.vdot(psi, S[a] @ psi).real for a in ("Sx", "Sy", "Sz")]
    j = two_j / 2
    expected = j * np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    assert np.allclose(mean, expected)
    assert np.allclose(np.abs(dicke.coherent_spin_state(two_j, np.pi, 0.0)), dicke.dicke_state(two_j, -two_j))


@pytest.mark.parametrize("two_j1, two_j", [(3, 4), (3, 2), (4, 5), (6, 5), (0, 1)])
def test_cg_isometry(two_j1, two_j):
    E = dicke.cg_isometry(two_j1, two_j)
    assert np.allclose(E.T @ E, np.eye(two_j + 1))
    # E intertwines the collective spin: (J1 + s) E = E J
    J1 = dicke.collective_operators(two_j1)
    s = dicke.collective_operators(1)
    J = dicke.collective_operators(two_j)
    for a in ("Sx", "Sy", "Sz"):
        total = np.kron(J1[a], np.eye(2)) + np.kron(np.eye(two_j1 + 1), s[a])
        assert np.allclose(total @ E, E @ J[a])


@pytest.mark.parametrize("N", [2, 3, 4, 5, 6])
def test_loss_kraus_complete(N):
    for two_j in range(N % 2, N + 1, 2):
        total = sum(
            K.T @ K
            for tj1 in dicke.loss_targets(N, two_j)
            for K in (dicke.loss_kraus(N, two_j, tj1, up) for up in (False, True))
        )
        assert np.allclose(total, np.eye(two_j + 1))


# ---------------------------------------------------------------- brute force in the 2^N space


def _collective(N):
    """Collective S+, Sz on N qubits (basis bit 1 = up) in the 2^N space."""
    sp = np.array([[0, 0], [1, 0]], float)  # |up><down| with index 0 = down, 1 = up
    sz = np.diag([-0.5, 0.5])
    def site(op, k):
        out = np.ones((1, 1))
        for q in range(N):
            out = np.kron(out, op if q == k else np.eye(2))
        return out
    return sum(site(sp, k) for k in range(N)), sum(site(sz, k) for k in range(N))


def _multiplet_basis(N, two_j):
    """Vectors |j, m, alpha> (columns indexed [k, alpha]) built by lowering highest weights."""
    Sp, Sz = _collective(N)
    Sm = Sp.T
    j = two_j / 2
    top = np.flatnonzero(np.isclose(np.diag(Sz), j))
    sub = np.eye(2**N)[:, top]
    # highest weights: kernel of S+ inside Sz = j
    _, sv, vh = np.linalg.svd(Sp @ sub)
    null = vh[np.sum(sv > 1e-10):].T
    hw = sub @ null
    vecs = [hw]
    for k in range(two_j):
        m = j - k
        vecs.append(Sm @ vecs[-1] / np.sqrt(j * (j + 1) - m * (m - 1)))
    return np.stack(vecs[::-1])  # index by k = j + m


def _embed(N, two_j, rho):
    """rho (x) 1_M / d_N(j) in the 2^N space: sum_{k,l} rho_kl sum_alpha |k alpha><l alpha| / d."""
    B = _multiplet_basis(N, two_j)
    return sum(rho[k, l] * B[k] @ B[l].T for k in range(two_j + 1) for l in range(two_j + 1)) / B.shape[2]


def _partial_trace_last(N, op):
    t = op.reshape(2 ** (N - 1), 2, 2 ** (N - 1), 2)
    return np.einsum("aibi->ab", t)


@pytest.mark.parametrize("N", [2, 3, 4, 5, 6])
def test_loss_kraus_match_brute_force_partial_trace(N):
    rng = np.random.default_rng(N)
    for two_j in range(N % 2, N + 1, 2):
        D = two_j + 1
        X = rng.normal(size=(D, D)) + 1j * rng.normal(size=(D, D))
        rho = X @ X.conj().T
        rho /= np.trace(rho)
        reduced = _partial_trace_last(N, _embed(N, two_j, rho))
        for tj1 in dicke.loss_targets(N, two_j):
            # block coefficient R[k, l] = <j1 k alpha| rho' |j1 l alpha> (any one alpha)
            B0 = _multiplet_basis(N - 1, tj1)[:, :, 0]
            R = B0 @ reduced @ B0.T
            expected = dicke.multiplicity(N - 1, tj1) * R
            kraus = sum(K @ rho @ K.T for K in
                        (dicke.loss_kraus(N, two_j, tj1, up) for up in (False, True)))
            assert np.allclose(kraus, expected, atol=1e-12), (N, two_j, tj1)


def _site(N, op, k):
    out = np.ones((1, 1))
    for q in range(N):
        out = np.kron(out, op if q == k else np.eye(2))
    return out


LOCAL_OPS = {"dephasing": np.diag([-1.0, 1.0]),                 # sigma_z (index 0 = down)
             "relaxation": np.array([[0.0, 1.0], [0.0, 0.0]])}  # sigma_-: up -> down


@pytest.mark.parametrize("N", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("process", ["dephasing", "relaxation"])
def test_local_kraus_match_brute_force(N, process):
    """sum_k a_k (rho_j (x) 1/d) a_k^dag in the 2^N space, split into blocks j', equals the
    local Kraus operators of docs/method.md summed over the routes j1 into each j'."""
    rng = np.random.default_rng(10 * N + len(process))
    a = [_site(N, LOCAL_OPS[process], k) for k in range(N)]
    for two_j in range(N % 2, N + 1, 2):
        D = two_j + 1
        X = rng.normal(size=(D, D)) + 1j * rng.normal(size=(D, D))
        rho = X @ X.conj().T / np.trace(X @ X.conj().T)
        out = sum(ak @ _embed(N, two_j, rho) @ ak.T for ak in a)
        routes = dicke.local_targets(N, two_j)
        assert np.trace(out).real == pytest.approx(
            sum(np.trace(K @ rho @ K.T).real for K in
                (dicke.local_kraus(N, two_j, process, t1, tp) for t1, tp in routes)))
        for two_jp in sorted({tp for _, tp in routes}):
            B0 = _multiplet_basis(N, two_jp)[:, :, 0]
            expected = dicke.multiplicity(N, two_jp) * (B0 @ out @ B0.T)
            ours = sum(K @ rho @ K.T for K in (dicke.local_kraus(N, two_j, process, t1, tp)
                                               for t1, tp in routes if tp == two_jp))
            assert np.allclose(ours, expected, atol=1e-12), (N, two_j, two_jp)


@pytest.mark.parametrize("N, two_j", [(6, 6), (6, 2), (7, 3), (4, 0)])
def test_local_jump_probabilities_sum_to_no_jump_part(N, two_j):
    """sum over routes K^dag K = sum_k a_k^dag a_k: N for sigma_z, N/2 + Jz for sigma_-."""
    Jz = dicke.spin_matrices(two_j)[2]
    expected = {"dephasing": N * np.eye(two_j + 1), "relaxation": N / 2 * np.eye(two_j + 1) + Jz}
    for process, target in expected.items():
        total = sum(K.T @ K for K in (dicke.local_kraus(N, two_j, process, t1, tp)
                                      for t1, tp in dicke.local_targets(N, two_j)))
        assert np.allclose(total, target)
