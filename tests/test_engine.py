"""Trajectory engine against exact block evolution (5 standard errors at every sample)."""

import numba as nb
import numpy as np
import pytest
from conftest import assert_frequency_matches

from trajsim import compiled, dicke, exact
from trajsim.compiled import kernels, layout
from trajsim.compiled.vexp import X_MIN, exp_nonpositive
from trajsim.model import Rates

T = np.linspace(0.0, 3.0, 16)


def run(rates, N, two_j, psi, n, loss_rate=0.0, loss_times=(), seed=7, t=T):
    psi = np.asarray(psi)
    states = psi[None, :] if psi.ndim == 1 else psi
    return compiled.simulate(compiled.BlockTable(rates), N, two_j, np.ones(len(states)), states, t,
                           np.asarray(loss_times, float), loss_rate,
                           compiled.rng_states(seed, 0, np.arange(n)))


# The symmetrised cross moments (SxSy, SxSz, SySz) are left out of the 5-SE comparisons: at late
# times they are carried by rare trajectories that jumped late (sample skewness ~400 at t = 3 for
# the CSS case, so the mean only becomes normal for n >> 10^5; checked: 2*10^5 trajectories agree
# to 0.7 SE).  The observables below have skewness <= ~30.
COMPARED = ("N", "j", "Sx", "Sy", "Sz", "Sx2", "Sy2", "Sz2")


def compare(samples, reference, within_sem, names=COMPARED):
    for name in names:
        k = compiled.OBSERVABLES.index(name)
        within_sem(samples[:, :, k], reference[name], name)


@pytest.mark.parametrize("N, two_m", [(8, -4), (7, -3)])
def test_dicke_off_pole_with_collective_decay(N, two_m, within_sem):
    rates = Rates(Gamma=1.0, r=0.8, gamma_coll=0.3)
    psi = dicke.dicke_state(N, two_m)
    samples, _ = run(rates, N, N, psi, 3000)
    reference = exact.evolve(rates, N, N, np.outer(psi, psi), T)
    compare(samples, reference, within_sem)


def test_scripted_losses_even_odd_even(within_sem):
    rates = Rates(Gamma=1.0, r=1.0)
    psi = dicke.coherent_spin_state(8, 2.2, 0.5)  # complex amplitudes, both sectors
    samples, events = run(rates, 8, 8, psi, 3000, loss_times=[1.0, 2.0])
    reference = exact.evolve(rates, 8, 8, np.outer(psi, psi.conj()), T, loss_times=[1.0, 2.0])
    compare(samples, reference, within_sem)
    assert np.all(samples[:, T < 1.0, 0] == 8) and np.all(samples[:, T >= 2.0, 0] == 6)
    losses = events["channel"] >= compiled.LOSS_CODE
    assert np.sum(losses) == 2 * 3000 and set(events["t"][losses]) == {1.0, 2.0}


def test_poisson_and_scripted_loss_with_collective_decay(within_sem):
    rates = Rates(Gamma=1.0, r=0.7, gamma_coll=0.2)
    psi = dicke.dicke_state(7, -5)
    samples, _ = run(rates, 7, 7, psi, 10000, loss_rate=0.1, loss_times=[1.0])
    reference = exact.evolve(rates, 7, 7, np.outer(psi, psi), T, loss_rate=0.1, loss_times=[1.0])
    compare(samples, reference, within_sem)


def test_odd_steady_state_ensemble_is_stationary(within_sem):
    """Sampling the mixed steady state (Eq. 16) as an ensemble of eigenvectors stays steady."""
    weights, states = exact.steady_ensemble(9, 9, 1.5)
    samples, _ = compiled.simulate(compiled.BlockTable(Rates(r=1.5)), 9, 9, weights, states, T,
                                 np.zeros(0), 0.0, compiled.rng_states(3, 0, np.arange(3000)))
    steady = exact.steady_observables(9, 1.5)
    for name in ("Sz", "Sx2", "Sy2", "Sz2"):
        within_sem(samples[:, :, compiled.OBSERVABLES.index(name)], np.full(T.size, steady[name]), name)


@pytest.mark.parametrize("N, r, t_end", [pytest.param(2000, 5.0, 2e-4, marks=pytest.mark.slow),
                                         (2001, 5.0, 2e-5), (2001, 2.5, 0.05)])
def test_numerically_stable_at_large_N_and_r(N, r, t_end):
    """No overflow or NaN; states stay normalised (the Casimir <S^2> = j(j+1) to 1e-10)."""
    t = np.linspace(0, t_end, 5)
    samples, events = run(Rates(r=r), N, N, dicke.dicke_state(N, -N), 3, t=t)
    assert np.all(np.isfinite(samples))
    o = {name: samples[:, :, k] for k, name in enumerate(compiled.OBSERVABLES)}
    j = o["j"]
    casimir = o["Sx2"] + o["Sy2"] + o["Sz2"]
    assert np.allclose(casimir / (j * (j + 1)), 1.0, atol=1e-10, rtol=0)
    assert events["t"].size > 0


def test_waiting_time_solves_no_jump_probability():
    table = compiled.BlockTable(Rates(r=1.3, gamma_coll=0.1))
    b = table.ensure(11, 11)
    packed = table.packed()
    blk_int, lam = packed[0], packed[3]
    rng = np.random.default_rng(0)
    for u in (0.9, 0.3, 1e-6):
        c = rng.normal(size=12)
        c /= np.linalg.norm(c)
        tau = compiled.waiting_time(blk_int, lam, b, c, 3, u, np.zeros(12))
        n = np.sum(c**2 * np.exp(-lam[b] * tau))
        assert n == pytest.approx(u, rel=1e-12)


def test_dark_component_never_jumps():
    table = compiled.BlockTable(Rates(r=1.0))
    b = table.ensure(6, 6)
    packed = table.packed()
    blk_int, lam = packed[0], packed[3]
    c = np.zeros(7)
    c[np.argmin(lam[b])] = 1.0
    assert compiled.waiting_time(blk_int, lam, b, c, 1, 1e-9, np.zeros(7)) == np.inf


def test_tiny_eigenvalues_of_K_have_relative_accuracy():
    """At N = 1401, r = 2.5 the smallest eigenvalue of K (5.4e-6, 7e-14 of the largest) is below
    a symmetric eigensolver's round-off; refined through the bidiagonal factor (model.py) it
    satisfies det K_s = det(B)^2 = prod of B's diagonal squared, to 1e-12 relative in the log."""
    from trajsim.model import build_block, no_jump_generator, sector_indices, sigma_bidiagonal

    rates = Rates(r=2.5)
    block = build_block(1401, 1401, rates)
    diag, off2 = no_jump_generator(1401, 1401, rates)
    for s in (0, 1):
        B = sigma_bidiagonal(1401, s, rates)
        i = sector_indices(1401)[s]
        K = np.diag(diag[i]) + np.diag(off2[i[:-1]], 1) + np.diag(off2[i[:-1]], -1)
        assert B.shape == K.shape and np.count_nonzero(B) <= 2 * len(i)
        assert np.allclose(B.T @ B, K, rtol=1e-13, atol=1e-13 * np.abs(K).max())
        log_det = 2 * np.sum(np.log(np.abs(np.diag(B))))
        assert np.sum(np.log(block.lam[s])) == pytest.approx(log_det, rel=1e-12)
    assert 5.3e-6 < np.concatenate(block.lam).min() < 5.5e-6
    assert np.abs(block.V[0].T @ block.V[0] - np.identity(block.lam[0].size)).max() < 1e-12


@nb.njit(cache=True)
def _exp_all(x):
    out = np.empty_like(x)
    for k in range(x.size):
        out[k] = exp_nonpositive(x[k])
    return out


def test_vectorisable_exp_is_within_two_ulp_and_zero_below_its_floor():
    x = -np.concatenate([np.geomspace(1e-300, 800.0, 200_001), [0.0, 706.9, 707.1, np.inf]])
    ours, ref = _exp_all(x), np.exp(x)
    assert _exp_all(np.zeros(1))[0] == 1.0
    kept = x >= X_MIN
    ulp = np.abs(ours - ref)[kept] / np.spacing(ref[kept])
    assert ulp.max() <= 2
    assert np.all(ours[~kept] == 0.0) and np.all(ref[~kept] < 1e-307)


def test_random_streams_depend_only_on_seed_point_trajectory():
    a = compiled.rng_states(5, 2, np.arange(10, 20))
    b = compiled.rng_states(5, 2, np.arange(0, 30))[10:20]
    assert np.array_equal(a, b)
    assert len({tuple(row) for row in compiled.rng_states(5, 0, np.arange(1000))}) == 1000
    assert not np.array_equal(compiled.rng_states(5, 0, [1]), compiled.rng_states(5, 1, [1]))


def test_mean_number_of_jumps_is_integrated_jump_rate():
    """E[#jumps in [0, t]] = ∫ Tr(Gamma Sigma^dag Sigma rho(s)) ds (exact, N = 10, r = 1.5)."""
    from scipy.integrate import trapezoid
    from scipy.sparse.linalg import expm_multiply

    N, rates = 10, Rates(r=1.5)
    psi = dicke.dicke_state(N, -N)
    grid = np.linspace(0, 2.0, 2001)
    rhos = expm_multiply(exact.block_liouvillian(N, N, rates), np.outer(psi, psi).ravel(),
                         start=0, stop=2.0, num=grid.size, endpoint=True)
    K = dicke.lmg(N, rates.r)
    expected = trapezoid([np.trace(x.reshape(N + 1, N + 1) @ K).real for x in rhos], grid)
    _, events = run(rates, N, N, psi, 5000, t=np.array([0.0, 2.0]))
    counts = np.bincount(events["row"], minlength=5000)
    assert abs(counts.mean() - expected) < 5 * counts.std(ddof=1) / np.sqrt(counts.size)


@pytest.mark.parametrize("N", [6, 7])
def test_local_dissipation_all_rates_and_a_loss(N, within_sem):
    """Eq. (11) with Gamma, gamma_coll, gamma_phi, gamma_rel, a scripted and Poisson losses:
    moments and the distribution of j within 5 SE of the exact evolution over all j blocks."""
    rates = Rates(Gamma=1.0, r=0.7, gamma_coll=0.1, gamma_phi=0.3, gamma_rel=0.2)
    psi = dicke.dicke_state(N, -N + 2)
    samples, events = run(rates, N, N, psi, 4000, loss_rate=0.05, loss_times=[1.5])
    reference = exact.evolve(rates, N, N, np.outer(psi, psi), T, loss_rate=0.05,
                             loss_times=[1.5])
    compare(samples, reference, within_sem, names=("N", "j", "Sz", "Sx2", "Sy2", "Sz2"))
    two_j = np.rint(2 * samples[:, :, compiled.OBSERVABLES.index("j")]).astype(int)
    for value in range(N + 1):
        assert_frequency_matches(two_j == value, reference["P_two_j"][:, value], f"P(2j={value})")
    local = (events["channel"] >= compiled.LOCAL_CODE) & (events["channel"] < compiled.LOSS_CODE)
    moved = events["two_j"][local] - events["two_j_before"][local]
    assert set(np.unique(moved)) == {-2, 0, 2}  # local jumps move j by -1, 0, +1


def test_local_jump_weights_sum_to_no_jump_part():
    """For every block, sum of local-channel weights = <gamma_rel (N/2 + Jz) + gamma_phi N / 2>."""
    rates = Rates(r=0.5, gamma_phi=0.4, gamma_rel=0.3)
    table = compiled.BlockTable(rates)
    rng = np.random.default_rng(2)
    for N, two_j in [(8, 8), (8, 4), (9, 3), (10, 0)]:
        b = table.ensure(N, two_j)
        blk_int, _, _, _, _, _, loc_int, loc_f, _, _, _ = table.packed()
        psi = rng.normal(size=two_j + 1) + 1j * rng.normal(size=two_j + 1)
        psi /= np.linalg.norm(psi)
        rows = range(blk_int[b, layout.B_LOC], blk_int[b, layout.B_LOC] + blk_int[b, layout.B_NLOC])
        total = sum(kernels._local_weight(loc_int, loc_f, row, two_j, psi) for row in rows)
        m = dicke.m_values(two_j)
        expected = rates.gamma_rel * (N / 2 + np.sum(m * np.abs(psi) ** 2)) + rates.gamma_phi * N / 2
        assert total == pytest.approx(expected, rel=1e-12)


def test_block_budget_evicts_and_rebuilds_without_changing_results():
    """A budget of about two blocks forces evictions while j wanders; results are bit-identical."""
    rates = Rates(r=0.8, gamma_phi=0.6, gamma_rel=0.2)
    psi = dicke.dicke_state(12, -12)
    t = np.linspace(0, 4.0, 9)
    args = (12, 12, np.ones(1), psi[None, :], t, np.array([2.0]), 0.0,
            compiled.rng_states(4, 0, np.arange(60)))
    roomy = compiled.BlockTable(rates)
    small = compiled.BlockTable(rates, budget_bytes=2 * 8 * 13**2)
    s1, e1 = compiled.simulate(roomy, *args)
    s2, e2 = compiled.simulate(small, *args)
    assert np.array_equal(s1, s2)
    assert all(np.array_equal(e1[k], e2[k]) for k in e1)
    assert small.builds > len(small.keys) and roomy.builds == len(roomy.keys)
    assert small.nbytes() < roomy.nbytes()


def test_events_can_be_switched_off_without_changing_samples():
    rates = Rates(r=1.2, gamma_phi=0.2)
    psi = dicke.dicke_state(7, -7)
    args = (compiled.BlockTable(rates), 7, 7, np.ones(1), psi[None, :], T, np.array([1.0]), 0.1,
            compiled.rng_states(8, 0, np.arange(50)))
    with_events, events = compiled.simulate(*args)
    without, none = compiled.simulate(*args, record_events=False)
    assert np.array_equal(with_events, without)
    assert events["t"].size > 0 and none["t"].size == 0


def test_shot_signal_is_unbiased_and_leaves_the_trajectory_alone(within_sem):
    """E[mean of m_y^2 over shots] = <Sy^2>: the shot average matches the exact value within 5 SE;
    the quantum trajectory is the same with and without the readout."""
    weights, states = exact.steady_ensemble(9, 9, 1.0)
    args = (9, 9, weights, states, T, np.zeros(0), 0.0, compiled.rng_states(1, 0, np.arange(3000)))
    with_shots, _ = compiled.simulate(compiled.BlockTable(Rates(r=1.0), sy_basis=True), *args,
                                    shots=5, rng_meas=compiled.rng_states(1, 0, np.arange(3000), 1))
    without, _ = compiled.simulate(compiled.BlockTable(Rates(r=1.0)), *args)
    assert np.array_equal(with_shots[:, :, :-1], without)
    steady = exact.steady_observables(9, 1.0)["Sy2"]
    within_sem(with_shots[:, :, -1], np.full(T.size, steady), "Sy2_shots")
    quarters = 4 * 5 * with_shots[:, :, -1]  # outcomes are half-integers: 4 m_y^2 is an integer
    assert np.allclose(quarters, np.rint(quarters), atol=1e-9)


def test_single_shots_follow_the_exact_sy_distribution():
    """One S_y shot per trajectory from the odd steady ensemble: outcome frequencies match the
    exact distribution (Fig. S2) within 5 binomial standard errors."""
    n = 6000
    weights, states = exact.steady_ensemble(9, 9, 1.5)
    samples, _ = compiled.simulate(compiled.BlockTable(Rates(r=1.5), sy_basis=True), 9, 9, weights,
                                 states, np.array([0.0, 0.1]), np.zeros(0), 0.0,
                                 compiled.rng_states(2, 0, np.arange(n)), shots=1,
                                 rng_meas=compiled.rng_states(2, 0, np.arange(n), 1))
    my, p = exact.sy_distribution(9, 1.5)
    squares = np.rint(4 * samples[:, 0, -1]).astype(int)  # 4 m_y^2 of the single shot
    for value in np.unique(np.rint(4 * my**2).astype(int)):
        p_value = p[np.rint(4 * my**2).astype(int) == value].sum()
        assert_frequency_matches((squares == value)[:, None], np.array([p_value]),
                                 f"4 m_y^2 = {value}")


def test_one_axis_twisting_without_decay_is_exact_unitary_evolution():
    """chi (S^2 - Sz^2) alone (App. G): no jumps, so every trajectory is the exact state, to
    round-off in every moment, including the SySz correlation that twisting builds up."""
    rates = Rates(Gamma=0.0, chi=0.7)
    psi = dicke.coherent_spin_state(9, np.pi / 2, 0.0)
    samples, events = run(rates, 9, 9, psi, 2)
    reference = exact.evolve(rates, 9, 9, np.outer(psi, psi.conj()), T)
    assert events["t"].size == 0
    for k, name in enumerate(compiled.OBSERVABLES):
        np.testing.assert_allclose(samples[:, :, k], np.broadcast_to(reference[name], (2, T.size)),
                                   atol=1e-10, err_msg=name)
    assert reference["SySz"][-1] != pytest.approx(0.0, abs=0.1)


def test_one_axis_twisting_with_collective_decay_relaxation_and_loss(within_sem):
    """Eq. (G1) with local relaxation and a scripted spin loss: the twisting phases survive jumps
    between blocks (N, j) -> (N, j') and (N - 1, j +- 1/2)."""
    rates = Rates(Gamma=0.0, gamma_coll=0.2, gamma_rel=0.1, chi=0.8)
    psi = dicke.coherent_spin_state(6, np.pi / 2, 0.3)
    samples, _ = run(rates, 6, 6, psi, 4000, loss_times=[1.5])
    reference = exact.evolve(rates, 6, 6, np.outer(psi, psi.conj()), T, loss_times=[1.5])
    compare(samples, reference, within_sem)


def test_one_axis_twisting_needs_a_diagonal_no_jump_generator():
    with pytest.raises(ValueError, match="Gamma sinh"):
        compiled.BlockTable(Rates(Gamma=1.0, r=0.5, chi=1.0)).ensure(4, 4)


def test_every_engine_kernel_is_cached_under_the_digest_of_all_engine_sources():
    """A compiled function carries the code of what it calls, so the cache stamp of each engine
    kernel is the digest of every engine source and dicke.py (compiled/cache.py), not of its own
    file: a change to kernels.py alone recompiles trajectories.advance too."""
    import inspect

    from trajsim.compiled import cache, fpenv, streams, trajectories, vexp

    modules = (kernels, trajectories, vexp, fpenv, streams)
    dispatchers = [obj for module in modules for _, obj in inspect.getmembers(module)
                   if isinstance(obj, nb.core.dispatcher.Dispatcher)
                   and obj.__module__ == module.__name__]
    assert len(dispatchers) >= 20
    for dispatcher in dispatchers:
        locator = dispatcher._cache._impl.locator
        assert isinstance(locator, cache.EngineInTreeLocator | cache.EngineUserDirLocator), \
            dispatcher
        assert locator.get_source_stamp() == ("trajsim.compiled", cache.DIGEST)
    assert {p.name for p in cache.SOURCES} >= {"kernels.py", "trajectories.py", "dicke.py"}
