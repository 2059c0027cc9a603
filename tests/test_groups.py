"""Classes of identical spins in the product of their symmetric blocks, against 2^N."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import expm_multiply

from trajsim import dicke
from trajsim import groups as grp
from trajsim.exact import evolve
from trajsim.groups import Group
from trajsim.model import Rates


def spin_chain(N: int, detunings, weights, rates: Rates):
    """Eq. (2) with per-spin detunings and weights in (C^2)^N, built spin by spin:
    (generator on row-major vec rho, total Sx, Sy, Sz)."""
    sm = sp.csr_matrix(np.array([[0.0, 0.0], [1.0, 0.0]]))  # |down><up|, basis (up, down)
    sz = sp.csr_matrix(np.diag([0.5, -0.5]))

    def site(op, i):
        return sp.kron(sp.kron(sp.identity(2**i), op), sp.identity(2 ** (N - i - 1)), "csr")

    Sm = [site(sm, i) for i in range(N)]
    Sz = sum(site(sz, i) for i in range(N))
    Sigma = sum(w * (np.cosh(rates.r) * s - np.sinh(rates.r) * s.T) for w, s in zip(weights, Sm))
    H = sum(d * site(sz, i) for i, d in enumerate(detunings))
    eye = sp.identity(2**N, format="csr")
    LdL = Sigma.T @ Sigma
    G = (-1j * (sp.kron(H, eye) - sp.kron(eye, H.T))
         + rates.Gamma * (sp.kron(Sigma, Sigma) - 0.5 * sp.kron(LdL, eye)
                          - 0.5 * sp.kron(eye, LdL.T)))
    Sp = sum(Sm).T
    return G.tocsr(), {"Sx": (Sp + Sp.T) / 2, "Sy": (Sp - Sp.T) / 2j, "Sz": Sz}


def evolve_moments(G, S, rho0, times):
    """<S_a> and <S_a^2> at the times, by expm_multiply from rho0."""
    vecs = expm_multiply(G, rho0.ravel().astype(complex), start=0, stop=times[-1],
                         num=len(times), endpoint=True)
    d = rho0.shape[0]
    out = {name: [] for name in ("Sx", "Sz", "Sx2", "Sy2", "Sz2")}
    for v in vecs:
        rho = v.reshape(d, d)
        for a in "xz":
            out[f"S{a}"].append(np.real(np.sum(rho.T * S[f"S{a}"].toarray())))
        for a in "xyz":
            A = S[f"S{a}"]
            out[f"S{a}2"].append(np.real(np.sum(rho.T * (A @ A).toarray())))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 0.6)])
def test_two_detuned_classes_equal_the_spin_chain(weights):
    """3 + 3 spins at detunings +-0.4 (and unequal weights) from all spins down: the product of
    the two j = 3/2 blocks against (C^2)^6 built spin by spin, to 1e-9 at every time."""
    rates = Rates(Gamma=1.0, r=0.8)
    classes = (Group(3, 0.4, weights[0]), Group(3, -0.4, weights[1]))
    times = np.linspace(0, 3, 7)
    G = grp.liouvillian(classes, rates)
    S = {k: v for k, v in grp.operators(classes, 0.0).items() if k in ("Sx", "Sy", "Sz")}
    rho0 = np.zeros((16, 16))
    rho0[0, 0] = 1.0  # m = -3/2 in both classes (Dicke index 0 is m = -j)
    mine = evolve_moments(G, S, rho0, times)
    G2, S2 = spin_chain(6, [0.4] * 3 + [-0.4] * 3, [weights[0]] * 3 + [weights[1]] * 3, rates)
    chain0 = np.zeros((64, 64))
    chain0[-1, -1] = 1.0  # all spins down
    reference = evolve_moments(G2, S2, chain0, times)
    for name in mine:
        np.testing.assert_allclose(mine[name], reference[name], rtol=0, atol=1e-9)
    assert np.ptp(mine["Sy2"]) > 0.1  # the dynamics is not trivial


def test_identical_classes_are_the_symmetric_engine():
    """delta = 0, w = 1: from the symmetric state the classes 2 + 3 evolve as j = 5/2 under
    Eq. (2) (exact.evolve)."""
    rates = Rates(Gamma=1.0, r=1.2)
    classes = (Group(2), Group(3))
    times = np.linspace(0, 2, 5)
    rho0 = np.zeros((12, 12))
    rho0[0, 0] = 1.0  # m = -1 and -3/2: |5/2, -5/2>
    mine = evolve_moments(grp.liouvillian(classes, rates), grp.operators(classes, 0.0), rho0,
                          times)
    reference = evolve(rates, 5, 5, np.diag([1.0] + [0.0] * 5), times)
    for name in ("Sz", "Sx2", "Sy2", "Sz2"):
        np.testing.assert_allclose(mine[name], reference[name], rtol=0, atol=1e-9)


def test_the_steady_state_is_stationary_and_physical():
    """Two detuned classes: G rho = 0, trace 1, Hermitian, positive."""
    rates = Rates(Gamma=1.0, r=1.0)
    classes = (Group(4, 0.3), Group(3, -0.3))
    rho = grp.steady_state(classes, rates)
    assert abs(np.trace(rho) - 1) < 1e-12
    assert np.abs(grp.liouvillian(classes, rates) @ rho.ravel()).max() < 1e-10
    np.testing.assert_allclose(rho, rho.conj().T, atol=1e-12)
    assert np.linalg.eigvalsh((rho + rho.conj().T) / 2).min() > -1e-10


@pytest.mark.parametrize("scale", [1e-300, 1e300])
def test_the_steady_state_does_not_depend_on_the_unit_of_rate(scale):
    """Gamma and the detunings scaled together leave the steady state as it is (the stationary
    equations are scaled to entries of at most 1 before LU)."""
    classes = (Group(4, 0.3), Group(3, -0.3))
    scaled = (Group(4, 0.3 * scale), Group(3, -0.3 * scale))
    np.testing.assert_allclose(grp.steady_state(scaled, Rates(Gamma=scale, r=1.0)),
                               grp.steady_state(classes, Rates(Gamma=1.0, r=1.0)),
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("Gamma", [1e-300, 1.0, 1e300])
def test_identical_classes_have_no_unique_steady_state(Gamma):
    """Identical classes have one steady state per block of their total spin: refused at every
    rate (at Gamma = 1e-300 LU returned infinities and the positivity check raised LinAlgError,
    a crash; at 1 the solve returned one of the steady states)."""
    with pytest.raises(ValueError, match="not unique"):
        grp.steady_state((Group(2), Group(1)), Rates(Gamma=Gamma, r=0.5))


def test_a_steady_state_that_is_not_unique_is_refused():
    """Unequal weights without detunings: Sigma has a 3-dimensional kernel (three dark states),
    and the solve's answer is not a density matrix."""
    classes = (Group(6, 0.0, 1.0), Group(6, 0.0, 0.5))
    with pytest.raises(ValueError, match="not unique"):
        grp.steady_state(classes, Rates(r=1.5))


@pytest.mark.parametrize("eps, unique", [(1e-2, True), (1e-4, False)])
def test_nearly_identical_classes(eps, unique):
    """Weights 1 and 1 - eps (4 + 2 spins, no detunings): the steady state is unique, but its
    slowest relaxation is 0.067 eps^2 Gamma (1.4e-11 of the fastest at eps = 1e-4), and there
    the solve's answer is not a density matrix: refused as nearly degenerate (it said "not
    unique" alone).  At 1e-2 it is the product of the classes' dark states (Sigma kills each
    class's own)."""
    classes = (Group(4, 0.0, 1.0), Group(2, 0.0, 1.0 - eps))
    L = grp.liouvillian(classes, Rates(r=0.5)).toarray()
    rates = np.sort(-np.linalg.eigvals(L).real)
    assert rates[1] == pytest.approx(0.0671 * eps**2, rel=1e-2)
    if not unique:
        with pytest.raises(ValueError, match="nearly degenerate"):
            grp.steady_state(classes, Rates(r=0.5))
        return
    dark = np.kron(dicke.dark_state(4, 0.5), dicke.dark_state(2, 0.5))
    np.testing.assert_allclose(grp.steady_state(classes, Rates(r=0.5)),
                               np.outer(dark, dark.conj()), atol=1e-6)


def grouped_ensemble(classes, rates, loss_rate, rho0, times):
    """The product-space density matrices of every class-size combination reachable by
    Poisson loss, one sparse generator over all of them (expm_multiply): total-spin <Sz>,
    <S_a^2> and <N> at the times."""
    from dataclasses import replace
    from itertools import product

    from trajsim import dicke
    sizes = list(product(*[range(g.N, -1, -1) for g in classes]))
    keys = [tuple(replace(g, N=n) for g, n in zip(classes, size)) for size in sizes]
    dims = [grp.dimension(k) ** 2 for k in keys]
    offsets = np.concatenate(([0], np.cumsum(dims)))
    index = {k: i for i, k in enumerate(keys)}
    blocks = [[None] * len(keys) for _ in keys]
    for i, key in enumerate(keys):
        N = sum(g.N for g in key)
        blocks[i][i] = grp.liouvillian(key, rates) - loss_rate * N * sp.identity(dims[i])
        for k, g in enumerate(key):
            if g.N == 0:
                continue
            after = key[:k] + (replace(g, N=g.N - 1),) + key[k + 1:]
            term = None
            for up in (False, True):
                K = grp.embedded(key, k, dicke.loss_kraus(g.N, g.N, g.N - 1, up))
                kk = loss_rate * g.N * sp.kron(K, K.conj())
                term = kk if term is None else term + kk
            j = index[after]
            blocks[j][i] = term if blocks[j][i] is None else blocks[j][i] + term
    G = sp.bmat(blocks, "csr")
    vec0 = np.zeros(offsets[-1], complex)
    vec0[: dims[0]] = rho0.ravel()
    vecs = expm_multiply(G, vec0, start=0, stop=times[-1], num=len(times), endpoint=True)
    out = {name: np.zeros(len(times)) for name in ("N", "Sz", "Sx2", "Sy2", "Sz2")
           + tuple(f"N_{k}" for k in range(len(classes)))}
    for i, key in enumerate(keys):
        S = grp.operators(key, 0.0)
        d = grp.dimension(key)
        ops = {"Sz": S["Sz"], **{f"S{a}2": S[f"S{a}"] @ S[f"S{a}"] for a in "xyz"}}
        for t, v in enumerate(vecs):
            rho = v[offsets[i]:offsets[i + 1]].reshape(d, d)
            out["N"][t] += sum(g.N for g in key) * np.trace(rho).real
            for k, g in enumerate(key):
                out[f"N_{k}"][t] += g.N * np.trace(rho).real
            for name, O in ops.items():
                out[name][t] += np.real(np.sum(rho.T * O.toarray()))
    return out


@pytest.mark.parametrize("n, r, delta", [(3, 1.5, 0.4), (4, 2.5, 7.0), (10, -0.8, 0.05)])
def test_the_pair_dark_state_is_the_dark_state_of_two_opposite_classes(n, r, delta):
    classes = (Group(n, delta), Group(n, -delta))
    dark = grp.dark_states(classes, r)
    psi = grp.pair_dark_state(n, r)
    assert dark.shape[1] == 1 and abs(np.vdot(dark[:, 0], psi)) == pytest.approx(1, abs=1e-12)
    ops = grp.operators(classes, r)
    assert np.abs(ops["Sigma"] @ psi).max() < 1e-12 and np.abs(ops["H"] @ psi).max() < 1e-12


@pytest.mark.parametrize("n, M", [(2, 4), (3, 4), (1, 6)])
def test_a_symmetric_cut_has_the_product_of_pairs_as_its_dark_state(n, M):
    """Classes k and M - 1 - k at -+delta_k pair up: the dark state is their pairs' product."""
    deltas = grp.broadening("gaussian", 2.0, M)
    classes = tuple(Group(n, float(d)) for d in deltas)
    dark = grp.dark_states(classes, 1.5)
    product, axes = np.ones(()), []
    for k in range(M // 2):
        product = np.multiply.outer(product, grp.pair_dark_state(n, 1.5).reshape(n + 1, n + 1))
        axes += [k, M - 1 - k]
    product = product.transpose(np.argsort(axes)).ravel()
    assert dark.shape[1] == 1
    assert abs(np.vdot(dark[:, 0], product)) == pytest.approx(1, abs=1e-12)


@pytest.mark.parametrize("distribution", ["gaussian", "uniform", "lorentzian"])
@pytest.mark.parametrize("width", [1e-300, 1e-6, 0.3, 1e5])
def test_broadening_puts_each_class_at_its_bins_mean(distribution, width):
    """Bin i holds the quantiles p in [i/M, (i + 1)/M]: its mean M * integral of the quantile
    function over them (the median p = (i + 1/2)/M for the Lorentzian), at any width."""
    from scipy import integrate, stats
    unit = {"gaussian": stats.norm(), "uniform": stats.uniform(-1, 2),
            "lorentzian": stats.cauchy()}[distribution]
    for M in range(1, 7):
        if distribution == "lorentzian":
            expected = unit.ppf((np.arange(M) + 0.5) / M)
        else:
            expected = [M * integrate.quad(unit.ppf, i / M, (i + 1) / M, epsabs=1e-13)[0]
                        for i in range(M)]
        deltas = grp.broadening(distribution, width, M)
        np.testing.assert_allclose(deltas / width, expected, rtol=1e-9, atol=1e-9)
        assert np.array_equal(deltas, -deltas[::-1])
    assert not grp.broadening(distribution, 0.0, 3).any()


@pytest.mark.parametrize("r", [0.5, 1.5, 2.5])
def test_one_spin_per_class_squeezes_like_weak_dephasing(r):
    """M = N classes: pairs (|down down> + tanh r |up up>)/norm, whose xi2 is (1 + e^{-4r})/2,
    the weak-dephasing steady state's (docs/validation.md), and <Sy^2> = (1 - tanh 2r)/2."""
    moments = grp.moments(np.outer(*[grp.pair_dark_state(1, r)] * 2),
                          (Group(1, 0.5), Group(1, -0.5)))
    assert moments["xi2"] == pytest.approx((1 + np.exp(-4 * r)) / 2, rel=1e-12)
    assert moments["Sy2"] == pytest.approx((1 - np.tanh(2 * r)) / 2, rel=1e-12)


@pytest.mark.parametrize("width, tol", [(100.0, 1e-3), (1000.0, 1e-5)])
def test_wide_broadening_splits_the_odd_state_into_pairs(width, tol):
    """Far apart in frequency, the pairs' dissipators decouple (secular limit, corrections ~
    width^-2): the odd state of 1 + 2 + 2 + 2 spins has the <Sy^2> of the broken pair (1, 2)
    plus that of a dark pair of 2 + 2 (docs/validation.md)."""
    r, deltas = 2.5, grp.broadening("gaussian", width, 4)
    classes = tuple(Group(n, float(d)) for n, d in zip((1, 2, 2, 2), deltas))
    full = grp.moments(grp.steady_state(classes, Rates(r=r)), classes)["Sy2"]
    broken = (Group(1, deltas[0]), Group(2, deltas[3]))
    dark = np.outer(*[grp.pair_dark_state(2, r)] * 2)
    pairs = (grp.moments(grp.steady_state(broken, Rates(r=r)), broken)["Sy2"]
             + grp.moments(dark, (Group(2, 1.0), Group(2, -1.0)))["Sy2"])
    assert full == pytest.approx(pairs, rel=tol)
    assert abs(full / pairs - 1) > tol / 100  # a limit, not an identity at this width


def test_the_secular_steady_state_is_the_wide_broadening_limit():
    """Two classes at +-w (3 + 4 spins, odd; unequal weights too): the exact steady state's
    <Sy^2> approaches the secular one as w^-2 (the error falls ~10x per 10^(1/2) in w); an
    even pair's secular state is its dark pair; same detunings are refused."""
    r = 2.5
    for weights in ((1.0, 1.0), (1.0, 0.7)):
        unit = (Group(3, 1.0, weights[0]), Group(4, -1.0, weights[1]))
        limit = grp.moments(grp.secular_steady_state(unit, r), unit)["Sy2"]
        errors = []
        for w in (100.0, 1000.0 / np.sqrt(10), 1000.0):
            classes = (Group(3, w, weights[0]), Group(4, -w, weights[1]))
            exact = grp.moments(grp.steady_state(classes, Rates(r=r)), classes)["Sy2"]
            errors.append(abs(exact - limit))
        assert errors[0] < 1e-3 * limit  # 5e-5 and 2e-4 relative at w = 100
        assert 7 < errors[0] / errors[1] < 13 and 7 < errors[1] / errors[2] < 13
    pair = (Group(4, 0.5), Group(4, -0.5))
    psi = grp.pair_dark_state(4, r)
    assert np.allclose(grp.secular_steady_state(pair, r), np.outer(psi, psi), atol=1e-12)
    with pytest.raises(ValueError, match="opposite detunings"):
        grp.secular_steady_state((Group(3, 1.0), Group(4, 1.0)), r)
