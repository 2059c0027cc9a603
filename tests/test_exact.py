"""Exact references: steady states (docs/method.md), Liouvillian gaps, and QuTiP mesolve."""

import numpy as np
import pytest

from trajsim import dicke, exact
from trajsim.model import Rates


@pytest.mark.parametrize("N, xi2, purity, Sy2", [
    (200, 0.0120153, 1.0, 0.188926),
    (201, 0.568678, 0.756978, 9.06179),
])
def test_steady_state_reference_values(N, xi2, purity, Sy2):
    o = exact.steady_observables(N, 2.5)
    assert o["xi2"] == pytest.approx(xi2, rel=5e-6)
    assert o["purity"] == pytest.approx(purity, rel=5e-6)
    assert o["Sy2"] == pytest.approx(Sy2, rel=5e-6)


@pytest.mark.parametrize("N", [10, 50, 200])
def test_even_xi2_tends_to_heisenberg_like_limit(N):
    # r = 6: e^{-4r} is still far above double-precision round-off in <Sy^2> (see docs/validation.md)
    assert exact.steady_observables(N, 6.0)["xi2"] == pytest.approx(2 / (N + 2), rel=1e-4)


def test_steady_states_are_stationary():
    """L rho_ss = 0 for the Eq. (2) Lindbladian, even and odd N."""
    for N in (8, 9):
        rho = exact.steady_density_matrix(N, N, 1.2)
        S = dicke.Sigma(N, 1.2)
        L = S @ rho @ S.T - 0.5 * (S.T @ S @ rho + rho @ S.T @ S)
        assert np.abs(L).max() < 1e-12 * np.abs(S.T @ S).max()


@pytest.mark.parametrize("N, gap", [(20, 0.3643), (21, 0.2935), (50, 1.877), (100, 6.813)])
def test_liouvillian_gap_reference_values(N, gap):
    assert exact.liouvillian_gap(N, 2.5) == pytest.approx(gap, abs=6e-4)


def test_evolution_matches_qutip_mesolve():
    """Eq. (2) + collective decay inside j = N/2, from a coherent spin state, against QuTiP."""
    qutip = pytest.importorskip("qutip")
    N, r, Gamma, gamma_coll = 6, 0.9, 1.0, 0.3
    j = N / 2
    Sigma = np.cosh(r) * qutip.jmat(j, "-") - np.sinh(r) * qutip.jmat(j, "+")
    psi = dicke.coherent_spin_state(N, 1.9, 0.6)
    # QuTiP orders |j, m> from m = +j down; trajsim from m = -j up.
    rho0 = qutip.Qobj(np.outer(psi, psi.conj())[::-1, ::-1])
    t = np.linspace(0, 2.0, 21)
    ops = {"Sx": qutip.jmat(j, "x"), "Sy": qutip.jmat(j, "y"), "Sz": qutip.jmat(j, "z")}
    e_ops = list(ops.values()) + [ops["Sy"] * ops["Sy"], ops["Sx"] * ops["Sx"]]
    res = qutip.mesolve(qutip.qzero(N + 1), rho0, t,
                        [np.sqrt(Gamma) * Sigma, np.sqrt(gamma_coll) * qutip.jmat(j, "-")],
                        e_ops=e_ops, options={"atol": 1e-12, "rtol": 1e-10})
    ours = exact.evolve(Rates(Gamma=Gamma, r=r, gamma_coll=gamma_coll), N, N,
                        np.outer(psi, psi.conj()), t)
    for name, values in zip(["Sx", "Sy", "Sz", "Sy2", "Sx2"], res.expect):
        assert np.allclose(ours[name], np.real(values), atol=1e-8), name


def test_scripted_loss_keeps_trace_and_lowers_N():
    t = np.linspace(0, 1, 11)
    out = exact.evolve(Rates(r=1.0), 6, 6, np.diag(dicke.dicke_state(6, -6)), t,
                       loss_times=[0.5, 0.7])
    assert np.allclose(out["N"], np.where(t < 0.5, 6, np.where(t < 0.7, 5, 4)))


def test_local_dissipation_matches_qutip_piqs():
    """Eq. (11) over all j blocks against QuTiP's PIQS (dephasing=2 gamma_phi, emission=gamma_rel)."""
    qutip = pytest.importorskip("qutip")
    from qutip import piqs

    N, r = 5, 0.8
    rates = Rates(Gamma=1.0, r=r, gamma_coll=0.15, gamma_phi=0.3, gamma_rel=0.2)
    system = piqs.Dicke(N=N, emission=rates.gamma_rel, dephasing=2 * rates.gamma_phi,
                        collective_emission=rates.gamma_coll)
    Sigma = np.cosh(r) * piqs.jspin(N, "-") - np.sinh(r) * piqs.jspin(N, "+")
    L = system.liouvillian() + rates.Gamma * qutip.lindblad_dissipator(Sigma)
    t = np.linspace(0, 2.0, 11)
    Sx, Sy, Sz = piqs.jspin(N)
    res = qutip.mesolve(L, piqs.dicke(N, N / 2, -N / 2 + 1), t,
                        e_ops=[Sz, Sx * Sx, Sy * Sy, Sz * Sz],
                        options={"atol": 1e-12, "rtol": 1e-10})
    ours = exact.evolve(rates, N, N, np.diag(dicke.dicke_state(N, -N + 2)), t)
    for name, values in zip(["Sz", "Sx2", "Sy2", "Sz2"], res.expect):
        assert np.allclose(ours[name], np.real(values), atol=1e-8), name


def test_stationary_state_is_the_long_time_limit():
    rates = Rates(r=0.9, gamma_coll=0.1, gamma_phi=0.4, gamma_rel=0.3)
    steady = exact.stationary_observables(rates, 5)
    late = exact.evolve(rates, 5, 5, np.diag(dicke.dicke_state(5, -5)), np.array([0.0, 60.0]))
    for name in ("j", "Sz", "Sx2", "Sy2", "xi2"):
        assert late[name][-1] == pytest.approx(steady[name], rel=1e-7, abs=1e-10), name
    assert steady["P_two_j"].sum() == pytest.approx(1.0)


def test_odd_steady_state_at_small_r_is_the_zero_mode():
    weights, _states = exact.steady_ensemble(31, 31, 0.1)
    assert np.all(np.isfinite(weights)) and weights.sum() == pytest.approx(1.0)
    assert exact.steady_observables(31, 0.1)["xi2"] == pytest.approx(
        exact.steady_observables(31, 0.1001)["xi2"], rel=1e-2)


@pytest.mark.parametrize("N", [200, 201])
def test_sy_distribution_reproduces_sy2(N):
    my, p = exact.sy_distribution(N, 2.5)
    assert p.sum() == pytest.approx(1.0) and np.all(p >= -1e-15)
    assert np.sum(p * my**2) == pytest.approx(exact.steady_observables(N, 2.5)["Sy2"], rel=1e-9)


def test_odd_limits_purity_one_third_and_sy2_n_over_pi2():
    """Eq. (17) and Sec. III D: for odd N and e^{2r} >> N, purity -> 1/3, <Sy^2> -> N/pi^2."""
    small, large = exact.steady_observables(101, 9.0), exact.steady_observables(401, 9.0)
    assert abs(large["purity"] - 1 / 3) < abs(small["purity"] - 1 / 3) < 0.003
    assert large["Sy2"] / (401 / np.pi**2) == pytest.approx(1.0, abs=0.005)


def test_odd_minimum_xi2_is_a_constant_factor_above_heisenberg():
    """Fig. 3 inset: min over r of odd-N xi^2 is ~2.5-2.7 x 2/(N+2) (paper: ~2.6)."""
    r = np.linspace(1.0, 2.5, 61)
    ratio = min(exact.steady_observables(101, x)["xi2"] for x in r) * (101 + 2) / 2
    assert 2.4 < ratio < 2.7


def test_steady_command_table(tmp_path):
    import subprocess
    import sys

    scenario = tmp_path / "s.yaml"
    scenario.write_text("model: {N: 20, r: 2.5}\ntime: {t_end: 1}\nsweep: {model.N: [20, 21]}\n")
    res = subprocess.run([sys.executable, "-m", "trajsim", "steady", scenario, "--gap", "--out",
                          tmp_path / "steady.csv"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    import pandas as pd
    table = pd.read_csv(tmp_path / "steady.csv")
    assert table["gap"].to_numpy() == pytest.approx([0.3643, 0.2935], abs=6e-4)
    assert table["gap_even"].to_numpy() == pytest.approx([0.36433, 0.67459], abs=1e-5)  # odd: x2.3
    assert table["jump_rate"].iloc[1] == pytest.approx(333.27, rel=1e-4)
    assert table["purity"].iloc[0] == pytest.approx(1.0)
    without = exact_steady_table(scenario)
    assert without["gap"].isna().all()
    assert without["xi2"].to_numpy() == pytest.approx(table["xi2"].to_numpy(), rel=1e-9)


def exact_steady_table(path):
    """``trajsim steady`` without --gap, in-process: the gap columns are left empty."""
    from trajsim.scenario import load
    from trajsim.steady import steady_table

    return steady_table(load(path))


def test_gap_of_the_spin_half_block_is_analytic():
    """j = 1/2: Sigma^dag Sigma = c^2|up><up| + s^2|down><down|; the coherences mix through
    Sigma rho Sigma^dag and the slow one decays at (cosh r - sinh r)^2 / 2 = e^{-2r} / 2."""
    for r in (0.5, 1.5, 2.5):
        assert exact.liouvillian_gap(21, r, two_j=1) == pytest.approx(np.exp(-2 * r) / 2, rel=1e-9)
    gap, two_j = exact.minimum_gap(21, 2.5)
    assert two_j == 1 and gap == pytest.approx(np.exp(-5) / 2, rel=1e-9)


def test_even_coherence_sector_is_invariant_and_holds_the_relevant_gap():
    """exp(i pi Sz) Sigma exp(-i pi Sz) = -Sigma, so D[Sigma] never couples |m><m'| with m - m'
    even to odd ones.  In j = 1/2 the even sector is the populations, relaxing at
    cosh^2 r + sinh^2 r = cosh 2r; the slow e^{-2r}/2 coherence mode is in the odd sector."""
    for two_j in (1, 4, 7):
        G = exact.block_liouvillian(two_j, two_j, Rates(r=1.3, gamma_coll=0.2)).toarray()
        even = exact.even_coherences(two_j)
        odd = np.setdiff1d(np.arange(G.shape[0]), even)
        assert np.abs(G[np.ix_(odd, even)]).max(initial=0) == 0
        assert np.abs(G[np.ix_(even, odd)]).max(initial=0) == 0
    r = 2.5
    assert exact.liouvillian_gap(1, r, even_only=True) == pytest.approx(np.cosh(2 * r), rel=1e-12)
    assert exact.liouvillian_gap(1, r) == pytest.approx(np.exp(-2 * r) / 2, rel=1e-9)
