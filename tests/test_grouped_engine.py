"""The grouped engine (model.groups): its eigenmode propagator against expm, its two no-jump
routes against each other, and its trajectories against 2^N and product-space references."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.linalg import expm
from scipy.sparse.linalg import expm_multiply
from test_groups import grouped_ensemble, spin_chain

from trajsim import groups as grp
from trajsim import scenario
from trajsim.compiled import COPIES, PROJECTIVE, WEAK, rng_states
from trajsim.compiled import factors, modes, readout
from trajsim.engines import WorkUnit, grouped
from trajsim.groups import Group
from trajsim.model import Rates


def generator(classes, rates):
    return grouped.build_block(classes, rates)


def dense_A(block):
    """A = -i H_eff of a block, dense."""
    return block.generator.matrix().toarray()


def propagate(A, e, psi, times, u):
    """``modes.advance_through`` from psi at t0 = 0 through times: (k, s, jumped, states at
    the times reached, state at the stop), in the product basis."""
    c, y, *scratch = (np.empty(A.shape[0], complex) for _ in range(6))
    n = np.diff(e.bounds)
    modes.amplitudes(e.WT, e.bounds, e.offsets, psi[e.perm], c)
    X = np.empty((times.size, psi.size), complex)
    k, s, jumped = modes.advance_through(e.mu, e.VT, e.GT, e.bounds, e.offsets, c, 0.0, 0.0, u,
                                         times, 0, times.size, X, y, tuple(scratch), n,
                                         np.array([-1.0, 0.0, 0.0]))
    out = np.empty_like(psi)
    modes.expand(e.VT, e.bounds, e.offsets, y, n, out)
    states, stop = np.empty_like(X[:k]), np.empty_like(out)
    states[:, e.perm], stop[e.perm] = X[:k], out
    return k, s, jumped, states, stop


@pytest.mark.parametrize("classes", [(Group(3, 0.5, 1.0), Group(2, -0.5, 0.7)),
                                     (Group(4, 0.3), Group(4, -0.3), Group(2, 0.0))])
def test_eigenmodes_match_expm_and_find_the_jump(classes):
    """States at the stops against expm(A t) psi to 1e-10 of ||psi||, and the jump where
    ||psi||^2 = u to 1e-12 relative (rates with gamma_coll, r = 1.3)."""
    rates = Rates(Gamma=1.0, r=1.3, gamma_coll=0.4)
    block = generator(classes, rates)
    A, e = dense_A(block), block.eigenmodes
    rng = np.random.default_rng(3)
    psi = rng.normal(size=A.shape[0]) + 1j * rng.normal(size=A.shape[0])
    psi /= np.linalg.norm(psi)
    times = np.array([0.0, 1e-4, 0.003, 0.02, 0.1])
    k, _, jumped, X, _ = propagate(A, e, psi, times, 1e-30)
    assert k == times.size and not jumped
    for t, x in zip(times, X):
        exact = expm(A * t) @ psi
        assert np.abs(x - exact).max() <= 1e-10 * np.linalg.norm(exact)
    for u in (0.9, 0.3, 1e-3):
        k, s, jumped, _, at = propagate(A, e, psi, np.array([50.0]), u)
        assert jumped and k == 0
        exact = expm(A * s) @ psi
        assert abs(np.vdot(exact, exact).real - u) <= 1e-12 * u
        assert np.abs(at - exact).max() <= 1e-10 * np.sqrt(u)


@pytest.mark.parametrize("kind, sigma, per_time", [(PROJECTIVE, 0.0, 1), (WEAK, 0.7, 1),
                                                   (COPIES, 0.0, 3)])
def test_a_measurement_of_the_total_sy_is_its_kraus_operator(kind, sigma, per_time):
    """``readout.measure_classes`` (both routes' measurement of the total S_y) against the
    dense total S_y of three classes of unequal sizes: a projective outcome is an eigenvalue of
    nonzero weight and leaves P_m psi, a weak one y leaves sum_m exp(-(y - m)^2 / 4 sigma^2)
    P_m psi, copies are eigenvalues and leave psi (normalised; to 1e-12)."""
    block = generator((Group(3, 0.5, 1.0), Group(2, -0.5, 0.7), Group(1, 0.1)), Rates(r=0.8))
    Sy = grp.operators(block.classes, 0.8)["Sy"].toarray()
    values, vectors = np.linalg.eigh(Sy)
    rng = np.random.default_rng(7)
    for stream in rng_states(3, 0, np.arange(5)):
        psi = rng.normal(size=Sy.shape[0]) + 1j * rng.normal(size=Sy.shape[0])
        psi /= np.linalg.norm(psi)
        x, out = psi.copy(), np.empty(per_time)
        readout.measure_classes(x, *block.sy_meter, kind, sigma, stream, out)
        weights = np.abs(vectors.conj().T @ psi) ** 2
        if kind == WEAK:
            amplitude = np.exp(-(out[0] - values) ** 2 / (4 * sigma**2))
        else:
            near = np.abs(values[None, :] - out[:, None]) < 1e-9
            assert near.any(axis=1).all() and (near @ weights > 1e-12).all()
            amplitude = near[0].astype(float) if kind == PROJECTIVE else np.ones(values.size)
        after = vectors @ (amplitude * (vectors.conj().T @ psi))
        np.testing.assert_allclose(x, after / np.linalg.norm(after), rtol=0, atol=1e-12)


@pytest.mark.parametrize("left, n, right", [(1, 4, 1), (3, 5, 1), (1, 3, 7), (4, 6, 9)])
def test_an_operator_on_one_factor_is_its_kronecker_product(left, n, right):
    """``factors.on_factor`` against (1_left ⊗ M ⊗ 1_right) x to rounding."""
    rng = np.random.default_rng(left * 100 + n * 10 + right)
    M = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
    x = rng.normal(size=left * n * right) + 1j * rng.normal(size=left * n * right)
    out = np.empty_like(x)
    factors.on_factor(M, x, left, right, out)
    exact = np.kron(np.kron(np.eye(left), M), np.eye(right)) @ x
    assert np.abs(out - exact).max() <= 1e-13 * np.abs(exact).max()


def test_an_inaccurate_decomposition_is_refused():
    """Near an exceptional point (a Jordan block perturbed by 1e-14) the eigenvectors are
    nearly parallel and V^-1 V - 1 is far from 0: no eigenmodes (the Krylov route runs)."""
    A = np.array([[-1.0, 1.0, 0.0], [1e-14, -1.0, 1.0], [0.0, 0.0, -2.0]], complex)
    assert grouped.Eigenmodes.of(sp.csr_matrix(A), np.zeros(3, int), []) is None
    assert grouped.Eigenmodes.of(sp.csr_matrix(A), np.array([0, 1, 1]), []) is not None
    assert grouped.Eigenmodes.of(sp.csr_matrix(np.diag([-1.0, -2.0 + 1j])), np.zeros(2, int),
                                  [])


def points(text: str):
    return scenario.load(scenario.parse_yaml(text, "test")).points[0]


def run(point, n: int, seed: int = 5):
    setup = grouped.GROUPED.build(point)
    return grouped.GROUPED.run_unit(setup, WorkUnit(0, 0, 0, n), seed, keep=True).frames


SCENARIO = """
model:
  r: 1.3
  gamma_coll: 0.3
  groups: [{N: 3, delta: 0.6}, {N: 3, delta: -0.2, weight: 0.7}]
time: {t_end: 3, n_samples: 7}
loss: {rate_per_spin: 0.1, times: [1.5]}
measurement: {kind: weak, sigma: 0.8, period: 1.0}
"""


def test_eigenmodes_and_krylov_steps_give_the_same_trajectories(monkeypatch):
    """The same streams through both no-jump routes: the same events (times to 1e-8), samples
    and outcomes to 1e-7."""
    point = points(SCENARIO)
    mine = run(point, 20)
    monkeypatch.setattr(grouped, "MODES_MAX", 0)
    steps = run(point, 20)
    for table, columns in (("events", ["t"]), ("trajectories", ["Sz", "Sy2", "SxSz"]),
                           ("measurements", ["outcome"])):
        a, b = mine[table], steps[table]
        assert len(a) == len(b) and len(a) > 10
        for column in columns:
            np.testing.assert_allclose(a[column], b[column], rtol=0, atol=1e-7)
    assert (mine["events"]["channel"] == steps["events"]["channel"]).all()
    assert set(mine["events"]["kind"]) == {"jump", "loss"}


def test_a_jump_from_a_state_without_norm_is_an_error():
    """``modes._jump`` refuses to normalise a state of zero norm (from a non-finite or empty
    state the compiled chain would otherwise jump forever at one time): an error, not a hang."""
    block = generator((Group(2, 0.3), Group(2, -0.3)), Rates(Gamma=1.0, r=1.0))
    e, d = block.eigenmodes, block.eigenmodes.mu.size
    y, c = np.zeros(d, complex), np.zeros(d, complex)
    with pytest.raises(FloatingPointError, match="zero or non-finite norm"):
        modes._jump(e.mu, e.GT, e.JT, e.jumps, e.bounds, e.offsets, y, np.diff(e.bounds), c,
                    np.zeros(3), np.array([1, 2, 3, 4], np.uint64),
                    np.empty((len(block.channels), d), complex),
                    tuple(np.empty(d, complex) for _ in range(4)))


def test_a_full_event_buffer_changes_nothing(monkeypatch):
    """The compiled jump chain returns to Python when its event buffer is full and resumes:
    with room for 2 events per call, the same bits as with the default."""
    point = points(SCENARIO)
    mine = run(point, 10)
    monkeypatch.setattr(grouped._Modes, "EVENTS", 2)
    small = run(point, 10)
    assert len(mine["events"]) > 3 * 10
    for table in ("events", "trajectories", "measurements"):
        pd.testing.assert_frame_equal(mine[table], small[table])


def test_total_spin_dicke_initial_state():
    """initial_state m = 0 of 2 + 2 spins: the symmetric |2, 0> (S^2 = 6, Sz = 0)."""
    point = points("model: {groups: [{N: 2}, {N: 2}]}\ninitial_state: {m: 0}\ntime: {t_end: 1}")
    psi = grouped.initial_state(point, grouped.classes_of(point))
    S = grouped.build_block(grouped.classes_of(point), Rates()).spin
    S2 = sum((op @ op) for op in S)
    assert abs(np.vdot(psi, S2 @ psi) - 6) < 1e-12 and abs(np.vdot(psi, S[2] @ psi)) < 1e-12


def class_sizes(frames, classes, times, n):
    """N_k of each class at the times, from the events table's losses."""
    sizes = np.zeros((n, len(times), len(classes)))
    sizes[:] = [g.N for g in classes]
    losses = frames["events"][frames["events"]["kind"] == "loss"]
    for row in losses.itertuples():
        k = int(row.channel.rsplit("_", 1)[1])
        sizes[row.trajectory, times >= row.t, k] -= 1
    return sizes


def within(mean, se, reference, name):
    assert np.all(np.abs(mean - reference) <= 5 * se + 1e-9), (name, mean, reference, se)


@pytest.mark.slow
def test_grouped_trajectories_match_the_product_space_ensemble():
    """Two detuned classes (3 + 2 spins, weights 1 and 0.7, gamma_coll on) with Poisson loss
    from all spins down: trajectory means of N, <Sz>, <S_a^2> and each class's N_k within 5
    standard errors of the product-space density matrix over every reachable class size, at
    every sample."""
    point = points("""
model: {r: 0.8, gamma_coll: 0.2, groups: [{N: 3, delta: 0.5}, {N: 2, delta: -0.5, weight: 0.7}]}
time: {t_end: 4, n_samples: 9}
loss: {rate_per_spin: 0.15}
""")
    classes, times, n = grouped.classes_of(point), point.time_grid(), 2000
    frames = run(point, n, seed=7)
    traj = frames["trajectories"]
    psi0 = np.zeros(12)
    psi0[0] = 1.0
    reference = grouped_ensemble(classes, point.rates(), 0.15, np.outer(psi0, psi0), times)
    for name in ("N", "Sz", "Sx2", "Sy2", "Sz2"):
        values = traj[name].to_numpy().reshape(n, -1)
        within(values.mean(0), values.std(0, ddof=1) / np.sqrt(n), reference[name], name)
    sizes = class_sizes(frames, classes, times, n)
    for k in range(2):
        within(sizes[:, :, k].mean(0), sizes[:, :, k].std(0, ddof=1) / np.sqrt(n),
               reference[f"N_{k}"], f"N_{k}")
    assert reference["N"][-1] < 4.0  # losses happened


def chain_with_loss(detunings, weights, rates, t_loss, times):
    """The 2^N reference: all spins down, Eq. (2) with per-spin detunings and weights in
    (C^2)^N (``spin_chain``) until t_loss, then a uniformly chosen spin traced out (spin i,
    probability 1/N, with its own detuning and weight leaving), then the 2^(N-1) generator:
    <Sz>, <Sx^2>, <Sy^2> at the times."""
    N = len(detunings)
    G, S = spin_chain(N, detunings, weights, rates)
    rho0 = np.zeros((2**N, 2**N), complex)
    rho0[-1, -1] = 1.0
    before = times[times < t_loss]  # a uniform grid from 0
    vecs = list(expm_multiply(G, rho0.ravel(), start=0, stop=before[-1], num=len(before),
                              endpoint=True))
    vecs.append(expm_multiply(G * (t_loss - before[-1]), vecs[-1]))
    out = {name: np.zeros(len(times)) for name in ("Sz", "Sx2", "Sy2")}

    def moments(rho, S, row, weight):
        out["Sz"][row] += weight * np.real(np.sum(rho.T * S["Sz"].toarray()))
        for a in "xy":
            A = S[f"S{a}"]
            out[f"S{a}2"][row] += weight * np.real(np.sum(rho.T * (A @ A).toarray()))

    for row, v in enumerate(vecs[:len(before)]):
        moments(v.reshape(2**N, 2**N), S, row, 1.0)
    rho = vecs[-1].reshape([2] * (2 * N))
    after = times[times >= t_loss]
    for i in range(N):
        reduced = np.trace(rho, axis1=i, axis2=N + i).reshape(2 ** (N - 1), 2 ** (N - 1))
        keep = [j for j in range(N) if j != i]
        G1, S1 = spin_chain(N - 1, [detunings[j] for j in keep], [weights[j] for j in keep],
                            rates)
        first = expm_multiply(G1 * (after[0] - t_loss), reduced.ravel())
        later = expm_multiply(G1, first, start=0, stop=after[-1] - after[0], num=len(after),
                              endpoint=True)
        for row, v in zip(range(len(before), len(times)), later):
            moments(v.reshape(2 ** (N - 1), 2 ** (N - 1)), S1, row, 1.0 / N)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 0.6)])
def test_a_scripted_loss_of_a_random_spin_matches_2_to_the_N(weights):
    """3 + 3 spins at +-0.4 with a scripted loss at t = 1.2 (a uniformly chosen spin): <Sz>,
    <Sx^2>, <Sy^2> within 5 SE of the (C^2)^6 -> (C^2)^5 density matrices at every sample."""
    point = points(f"""
model:
  r: 0.8
  groups: [{{N: 3, delta: 0.4, weight: {weights[0]}}}, {{N: 3, delta: -0.4, weight: {weights[1]}}}]
time: {{t_end: 3, n_samples: 7}}
loss: {{times: [1.2]}}
""")
    times, n = point.time_grid(), 3000
    traj = run(point, n, seed=11)["trajectories"]
    reference = chain_with_loss([0.4] * 3 + [-0.4] * 3, [weights[0]] * 3 + [weights[1]] * 3,
                                point.rates(), 1.2, times)
    for name in reference:
        values = traj[name].to_numpy().reshape(n, -1)
        within(values.mean(0), values.std(0, ddof=1) / np.sqrt(n), reference[name], name)


@pytest.mark.slow
def test_a_grouped_run_is_thread_independent_and_reports(tmp_path):
    """model.groups through the API: one thread and two give the same files; the report names
    the classes, runs the record detectors and leaves the exact Bayesian filter out."""
    import pandas as pd

    from trajsim import api
    from trajsim.report import write_report
    raw = scenario.parse_yaml(SCENARIO, "test")
    raw["run"] = {"trajectories": 12, "unit_size": 4}
    one = api.run(raw, tmp_path / "one", threads=1, progress=False)
    api.run(raw, tmp_path / "two", threads=2, progress=False)
    for name in ("summary", "trajectories", "events", "measurements"):
        a = pd.read_parquet(tmp_path / "one" / f"{name}.parquet")
        b = pd.read_parquet(tmp_path / "two" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert one.summary["N_mean"].iloc[-1] < 6
    report = (write_report(tmp_path / "one") / "report.md").read_text()
    assert "in classes (N, δ, w) = (3, 0.6, 1), (3, -0.2, 0.7)" in report
    assert "model.groups" in report and "| cusum |" in report and "| bayes |" not in report


def test_steady_state_of_classes():
    """trajsim steady on model.groups: 6 + 6 spins at +-0.5 have the pure even dark state
    (<Sy^2> = 0.0384, docs/validation.md); identical classes (not unique) and too many product
    states are one-line errors."""
    from trajsim import steady
    point = points("model: {r: 1.5, groups: [{N: 6, delta: 0.5}, {N: 6, delta: -0.5}]}\n"
                   "time: {t_end: 1}")
    row = steady.steady_row(point)
    assert abs(row["purity"] - 1) < 1e-9 and abs(row["Sy2"] - 0.0384369) < 1e-6
    for groups_, message in (("[{N: 6}, {N: 6}]", "not unique"),
                             ("[{N: 30, delta: 1}, {N: 30}]", "limited to")):
        with pytest.raises(scenario.ScenarioError, match=message):
            steady.steady_row(points(f"model: {{r: 1.5, groups: {groups_}}}\ntime: {{t_end: 1}}"))


@pytest.mark.slow
def test_identical_classes_reproduce_the_symmetric_model():
    """delta_k = 0, w_k = 1: classes 3 + 4 from all spins down are j = 7/2 under Eq. (2)
    (with gamma_coll): <Sz>, <Sx^2>, <Sy^2>, <SxSz> within 5 SE of ``exact.evolve`` at every
    sample."""
    from trajsim.exact import evolve
    point = points("""
model: {r: 1.2, gamma_coll: 0.2, groups: [{N: 3}, {N: 4}]}
time: {t_end: 3, n_samples: 7}
""")
    times, n = point.time_grid(), 3000
    traj = run(point, n, seed=3)["trajectories"]
    rho0 = np.zeros((8, 8))
    rho0[0, 0] = 1.0
    reference = evolve(point.rates(), 7, 7, rho0, times)
    for name in ("Sz", "Sx2", "Sy2", "SxSz"):
        values = traj[name].to_numpy().reshape(n, -1)
        within(values.mean(0), values.std(0, ddof=1) / np.sqrt(n), reference[name], name)


@pytest.mark.slow
def test_projective_total_sy_measurement_matches_the_density_matrix():
    """3 + 2 detuned classes, one projective S_y measurement at t = 1: the outcome frequencies
    against the exact law Tr(P_m rho(1)) (P_m: the projector on total S_y = m, from the dense
    total S_y), and the samples after it against rho evolved from sum_m P_m rho(1) P_m, within
    5 SE."""
    point = points("""
model: {r: 0.9, groups: [{N: 3, delta: 0.7}, {N: 2, delta: -0.4, weight: 0.8}]}
time: {t_end: 2, n_samples: 5}
measurement: {kind: projective, times: [1.0]}
""")
    n = 4000
    frames = run(point, n, seed=17)
    classes = grouped.classes_of(point)
    G = grp.liouvillian(classes, point.rates())
    ops = grp.operators(classes, 0.0)
    d = ops["Sy"].shape[0]
    rho0 = np.zeros((d, d), complex)
    rho0[0, 0] = 1.0
    rho1 = expm_multiply(G, rho0.ravel(), start=0, stop=1.0, num=2, endpoint=True)[1]
    rho1 = rho1.reshape(d, d)
    values, vectors = np.linalg.eigh(ops["Sy"].toarray())
    outcomes = frames["measurements"].outcome.to_numpy()
    after = np.zeros_like(rho1)
    for m in np.unique(np.round(values * 2) / 2):
        V = vectors[:, np.abs(values - m) < 1e-9]
        P = V @ V.conj().T
        p = np.trace(P @ rho1).real
        seen = np.mean(np.abs(outcomes - m) < 1e-9)
        assert abs(seen - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12, (m, seen, p)
        after += P @ rho1 @ P
    later = expm_multiply(G, after.ravel(), start=0, stop=1.0, num=3, endpoint=True)
    traj = frames["trajectories"]
    for name in ("Sz", "Sy2"):
        O = ops[name] if name == "Sz" else ops["Sy"] @ ops["Sy"]
        exact = [np.real(np.sum(v.reshape(d, d).T * O.toarray())) for v in later]
        values_ = traj[traj.t >= 1.0][name].to_numpy().reshape(n, -1)
        within(values_.mean(0), values_.std(0, ddof=1) / np.sqrt(n), np.array(exact), name)
