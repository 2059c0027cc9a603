"""The hybrid engine (trajsim.engines.hybrid): exact trajectories of Eq. (9) against exact
density matrices built independently, and the scenario keys of model.kind: hybrid (the
Krylov no-jump propagation: test_krylov.py)."""

import numpy as np
import pytest
import qutip as qt
from scipy.sparse.linalg import expm_multiply

import trajsim
from trajsim import dicke, hybrid
from trajsim.engines.hybrid import generator
from trajsim.model import Rates
from trajsim.scenario import ScenarioError, load

CAVITY = hybrid.Cavity(g=0.5, kappa_sqz=1.0, r=0.4, kappa_int=0.3, Delta_c=0.3, n_max=5)
LOCAL = Rates(gamma_phi=0.2, gamma_rel=0.1)


def test_generator_splits_into_parity_sectors_and_its_decay_is_the_channels():
    """H_eff keeps the parity of n + k, and -(A + A^dag) = sum_c L_c^dag L_c over the cavity
    channels and every j-resolved local route: the no-jump decay is the total jump rate."""
    A, channels = generator(3, 3, CAVITY, LOCAL)
    A = A.toarray()
    parity = (np.arange(6)[:, None] + np.arange(4)[None, :]).ravel() % 2
    assert not np.any(A[np.ix_(parity == 0, parity == 1)])
    eye_f, eye_s = np.identity(6), np.identity(4)
    total = sum(np.kron(F.T @ F, eye_s) if S is None else np.kron(eye_f, S.T @ S)
                for _, _, F, S in channels)
    assert np.allclose(total, -(A + A.conj().T), atol=1e-12)
    assert {name for name, *_ in channels} == {"cavity_sqz", "cavity_int", "dephasing",
                                               "relaxation"}


def test_the_cavity_starts_in_the_reservoir_squeezed_vacuum():
    """b |psi> = 0 for b = cosh r a + sinh r a^dag, but for the truncation's top row, and
    <a^dag a> -> sinh^2 r."""
    c = hybrid.squeezed_vacuum(40, 0.5)
    a = hybrid.annihilation(40)
    b = np.cosh(0.5) * a + np.sinh(0.5) * a.T
    assert np.allclose((b @ c)[:-1], 0, atol=1e-14)
    assert c @ (a.T @ a) @ c == pytest.approx(np.sinh(0.5) ** 2, rel=1e-9)


@pytest.mark.parametrize("basis", hybrid.BASES)
def test_reservoir_photon_distribution_is_the_truncated_steady_state(basis):
    """The closed form of hybrid.reservoir_populations against the cavity-only master equation
    solved at a cut-off far beyond its tail, in the Fock basis of a and in that of b (where the
    internal loss alone puts photons)."""
    kappa_sqz, kappa_int, r = 1.0, 0.3, 0.8
    cavity = hybrid.Cavity(1e-9, kappa_sqz, r, kappa_int, n_max=60, basis=basis)
    rho = hybrid.steady_state(1, cavity)
    numeric = np.real(np.diag(hybrid.cavity_state(rho, 1)))
    closed = hybrid.reservoir_populations(kappa_sqz, kappa_int, r, 30, basis)
    assert np.allclose(closed, numeric[:31], rtol=0, atol=1e-12)
    assert hybrid.photons(rho, 1, cavity) == pytest.approx(np.sinh(r) ** 2 / 1.3, rel=1e-9)
    if basis == "reservoir":
        assert 0 < numeric[1] < 0.1 and numeric[12] < 1e-6  # a short tail


HYBRID = {"name": "h", "model": {"kind": "hybrid", "N": 4, "r": 0.5, "g": 0.2},
          "time": {"t_end": 2.0, "n_samples": 5}, "run": {"trajectories": 8}}


def with_model(**changes) -> dict:
    return {**HYBRID, "model": {**HYBRID["model"], **changes}}


def test_hybrid_points_resolve_eqs_12_13_and_a_fock_cut_off():
    point = load(with_model(kappa_int=0.25)).points[0]
    m = point["model"]
    assert m["Gamma"] == pytest.approx(4 * 0.2**2 * 1.0 / 1.25**2)
    assert m["gamma_coll"] == pytest.approx(4 * 0.2**2 * 0.25 / 1.25**2)
    assert m["n_max"] == hybrid.auto_n_max(1.0, 0.25, 0.5, 200)
    assert hybrid.reservoir_tail(1.0, 0.25, 0.5, m["n_max"]) < hybrid.AUTO_TOP_WEIGHT
    assert hybrid.reservoir_tail(1.0, 0.25, 0.5, m["n_max"] - 1) >= hybrid.AUTO_TOP_WEIGHT
    assert point["run"]["engine"] == "jumps"


@pytest.mark.parametrize("scenario, key", [
    ({**HYBRID, "model": {"N": 4, "g": 0.2}}, "model.g"),
    ({**HYBRID, "model": {"N": 4, "n_max": 8}}, "model.n_max"),
    (with_model(Gamma=1.0), "model.Gamma"),
    (with_model(chi=0.5), "model.chi"),
    ({**HYBRID, "model": {"kind": "hybrid", "N": 4}}, "model.g"),
    (with_model(r=1.5, n_max=8), "model.n_max"),
    (with_model(r=4.0), "model.r"),
    (with_model(kappa_sqz=0.0), "model.kappa_sqz"),
    ({**HYBRID, "run": {"engine": "record"}}, "run.engine"),
    ({**HYBRID, "sweep": {"model.kind": ["spin", "hybrid"]}}, "sweep.model.kind"),
    ({**HYBRID, "sweep": {"model.Gamma": [1.0, 2.0]}}, "model.Gamma"),
    ({**HYBRID, "measurement": {"shots": 10}}, "measurement.shots"),
    (with_model(n_max=500), "model.n_max"),
])
def test_bad_hybrid_input_names_the_key(scenario, key):
    with pytest.raises(ScenarioError) as err:
        load(scenario)
    assert str(err.value).split(":")[0].endswith(key) and "\n" not in str(err.value)


def reference_states(N, cavity, psi_spin, times, t_loss) -> list:
    """(N, rho) at each time from the dense Eq. (9) Liouvillian (hybrid.liouvillian), one spin
    lost at t_loss (on the grid: the sample there sees the state after it) by the loss channel
    sum_s (1 ⊗ K_s) rho (1 ⊗ K_s)^dag on the spins."""
    psi = np.kron(hybrid.reservoir_vacuum(cavity), psi_spin)
    rho, out, fock = np.outer(psi, psi.conj()), [], cavity.n_max + 1
    for k, t in enumerate(times):
        if k:
            rho = expm_multiply(hybrid.liouvillian(N, cavity) * (t - times[k - 1]),
                                rho.ravel()).reshape(rho.shape)
        if np.isclose(t, t_loss):
            lost = [np.kron(np.identity(fock), dicke.loss_kraus(N, N, N - 1, up))
                    for up in (False, True)]
            rho, N = sum(K @ rho @ K.T for K in lost), N - 1
        out.append((N, rho))
    return out


def reference_moments(states, cavity) -> dict:
    """Spin and cavity moments of ``reference_states``."""
    out = {}
    for N, rho in states:
        values = {k: v for k, v in hybrid.spin_observables(rho, N).items() if np.ndim(v) == 0}
        rho_c = hybrid.cavity_state(rho, N)
        ops = hybrid.cavity_observables(cavity)
        values.update({name: np.trace(rho_c @ op).real for name, op in ops.items()})
        for name, value in values.items():
            out.setdefault(name, []).append(value)
    return {name: np.array(v) for name, v in out.items()}


def test_both_cavity_bases_converge_to_the_same_dynamics():
    """The Eq. (9) Liouvillian with the cavity cut in the Fock basis of a (n_max = 50) and in
    that of the reservoir's mode b (n_max = 16: the squeezed vacuum is its vacuum): the same spin
    moments to 1e-8 (cavity moments 1e-7) along an evolution with internal loss, from all spins
    down."""
    spins = dicke.dicke_state(2, -2)
    times = np.linspace(0, 2.0, 3)
    moments = []
    for basis, n_max in (("fock", 50), ("reservoir", 16)):
        cavity = hybrid.Cavity(g=0.15, kappa_sqz=1.0, r=0.8, kappa_int=0.2, n_max=n_max,
                               basis=basis)
        moments.append(reference_moments(reference_states(2, cavity, spins, times, -1.0),
                                         cavity))
    for name in SPIN_MOMENTS:
        assert np.allclose(moments[0][name], moments[1][name], rtol=0, atol=1e-8), name
    for name in ("n_cav", "X2_cav", "P2_cav"):  # the a-basis still cuts 1e-8 of <a^dag a> here
        assert np.allclose(moments[0][name], moments[1][name], rtol=0, atol=1e-7), name
    assert np.all(moments[1]["top_fock"] < 1e-9) and np.all(moments[0]["top_fock"] < 1e-9)


SPIN_MOMENTS = ("Sx", "Sy", "Sz", "Sx2", "Sy2", "Sz2", "SxSy", "SxSz", "SySz")
CAVITY_MOMENTS = ("n_cav", "X_cav", "P_cav", "X2_cav", "P2_cav")


@pytest.mark.slow
@pytest.mark.parametrize("basis", hybrid.BASES)
def test_trajectories_match_the_eq_9_density_matrix(basis, within_sem):
    """N = 4, n_max = 8, sqrt(N) g / kappa = 0.67 (beyond the adiabatic limit), a detuned cavity,
    from a coherent spin state (both parity sectors), a spin lost at t = 1.5 and a projective
    S_y measurement at the end, with the cavity cut in either basis: every spin and cavity moment
    within 5 SE at every sample of the Liouvillian in that basis, the outcomes within 5 binomial
    SE of Born's rule."""
    N, cavity = 4, hybrid.Cavity(g=0.4, kappa_sqz=1.0, r=0.5, kappa_int=0.2, Delta_c=0.5, n_max=8,
                                 basis=basis)
    scenario = {"name": "hybrid", "model": {"kind": "hybrid", "N": N, "r": 0.5, "g": 0.4,
                                            "kappa_sqz": 1.0, "kappa_int": 0.2, "Delta_c": 0.5,
                                            "n_max": 8, "cavity_basis": basis},
                "initial_state": {"kind": "css", "theta": 2.0, "phi": 0.3},
                "loss": {"times": [1.5]}, "time": {"t_end": 3.0, "n_samples": 7},
                "measurement": {"kind": "projective", "times": [3.0]},
                "run": {"trajectories": 3000, "seed": 4}}
    result = trajsim.run(scenario, threads=2)
    traj = result.trajectories.sort_values(["trajectory", "t"])
    times = np.linspace(0, 3.0, 7)
    states = reference_states(N, cavity, dicke.coherent_spin_state(N, 2.0, 0.3), times, 1.5)
    ref = reference_moments(states, cavity)
    for name in SPIN_MOMENTS + CAVITY_MOMENTS:
        samples = traj[name].to_numpy().reshape(-1, times.size)[:, :-1]  # before the measurement
        within_sem(samples, ref[name][:-1], name)
    assert np.all(traj.N.to_numpy().reshape(-1, 7) == [4, 4, 4, 3, 3, 3, 3])
    N_end, rho = states[-1]
    rho_spin = hybrid.spin_state(rho, N_end)
    values, vectors = np.linalg.eigh(dicke.collective_operators(N_end)["Sy"])
    born = np.real(np.einsum("km,kl,lm->m", vectors.conj(), rho_spin, vectors))
    outcomes = result.measurements.outcome.to_numpy()
    freq = np.array([(np.abs(outcomes - v) < 1e-9).mean() for v in values])
    assert np.all(np.abs(freq - born) <= 5 * np.sqrt(born * (1 - born) / outcomes.size) + 1e-9)


def qubit_model(N: int, cavity: hybrid.Cavity, rates: Rates):
    """H and the collapse operators of Eq. (9) with local rates in the full space
    Fock ⊗ (C^2)^N, built with QuTiP from single spins (no Dicke algebra), and the collective
    spin operators."""
    fock = cavity.n_max + 1
    idf, id2 = qt.qeye(fock), qt.qeye(2)

    def spin(op, k):
        return qt.tensor([idf] + [op if i == k else id2 for i in range(N)])

    a = qt.tensor([qt.destroy(fock)] + [id2] * N)
    sm = [spin(qt.sigmam(), k) for k in range(N)]  # basis(2, 1) is spin down
    sz = [spin(qt.sigmaz(), k) for k in range(N)]
    Sm, Sz = sum(sm), 0.5 * sum(sz)
    H = cavity.g * (a.dag() * Sm + a * Sm.dag()) + cavity.Delta_c * a.dag() * a
    c_ops = [np.sqrt(cavity.kappa_sqz) * (np.cosh(cavity.r) * a + np.sinh(cavity.r) * a.dag()),
             np.sqrt(cavity.kappa_int) * a]
    c_ops += [np.sqrt(rates.gamma_phi / 2) * op for op in sz]
    c_ops += [np.sqrt(rates.gamma_rel) * op for op in sm]
    Sx, Sy = (Sm.dag() + Sm) / 2, (Sm.dag() - Sm) / 2j
    spins = {"Sx": Sx, "Sy": Sy, "Sz": Sz, "Sx2": Sx * Sx, "Sy2": Sy * Sy, "Sz2": Sz * Sz,
             "SxSy": (Sx * Sy + Sy * Sx) / 2, "SxSz": (Sx * Sz + Sz * Sx) / 2,
             "SySz": (Sy * Sz + Sz * Sy) / 2, "n_cav": a.dag() * a,
             "X2_cav": ((a + a.dag()) / 2) ** 2, "P2_cav": ((a - a.dag()) / 2j) ** 2}
    return H, c_ops, spins


@pytest.mark.slow
def test_trajectories_with_local_rates_and_a_loss_match_qubit_space_mesolve(within_sem):
    """N = 3 spins, one at a time (QuTiP mesolve in Fock ⊗ (C^2)^3, the lost spin traced out at
    t = 1.5): local dephasing and relaxation move j, the loss leaves two spins; spin and cavity
    moments within 5 SE at every sample."""
    N, rates = 3, Rates(gamma_phi=0.2, gamma_rel=0.1)
    cavity = hybrid.Cavity(g=0.5, kappa_sqz=1.0, r=0.4, kappa_int=0.3, Delta_c=0.3, n_max=6)
    scenario = {"name": "hybrid-local", "model": {"kind": "hybrid", "N": N, "r": 0.4, "g": 0.5,
                                                  "kappa_sqz": 1.0, "kappa_int": 0.3,
                                                  "Delta_c": 0.3, "n_max": 6, "gamma_phi": 0.2,
                                                  "gamma_rel": 0.1},
                "initial_state": {"kind": "dicke", "m": 0.5},
                "loss": {"times": [1.5]}, "time": {"t_end": 3.0, "n_samples": 7},
                "run": {"trajectories": 3000, "seed": 5}}
    result = trajsim.run(scenario, threads=2)
    traj = result.trajectories.sort_values(["trajectory", "t"])
    cav = qt.Qobj(hybrid.squeezed_vacuum(6, 0.4))
    # |j = 3/2, m = 1/2>: the symmetric state with one spin down (basis(2, 1))
    up, down = qt.basis(2, 0), qt.basis(2, 1)
    spins = (qt.tensor(down, up, up) + qt.tensor(up, down, up) + qt.tensor(up, up, down)).unit()
    options = {"atol": 1e-10, "rtol": 1e-9}
    H, c_ops, ops = qubit_model(3, cavity, rates)
    before = qt.mesolve(H, qt.ket2dm(qt.tensor(cav, spins)), [0.0, 0.5, 1.0, 1.5], c_ops,
                        options=options).states
    H, c_ops, ops_after = qubit_model(2, cavity, rates)
    after = qt.mesolve(H, before[-1].ptrace([0, 1, 2]), [1.5, 2.0, 2.5, 3.0], c_ops,
                       options=options).states  # the third spin is lost at t = 1.5
    ref = {name: np.array([qt.expect(ops[name], state) for state in before[:-1]]
                          + [qt.expect(ops_after[name], state) for state in after])
           for name in ops}
    for name in ("Sx", "Sz", "Sx2", "Sy2", "Sz2", "SxSz", "n_cav", "X2_cav", "P2_cav"):
        samples = traj[name].to_numpy().reshape(-1, 7)
        within_sem(samples, ref[name], name)
    assert np.all(traj.N.to_numpy().reshape(-1, 7) == [3, 3, 3, 2, 2, 2, 2])
    assert set(result.events.channel) >= {"cavity_sqz", "dephasing", "relaxation", "lost_up"}


@pytest.mark.slow
def test_hybrid_outputs_are_the_same_for_any_thread_count_and_resume(tmp_path):
    scenario = {**with_model(gamma_phi=0.1, n_max=8), "loss": {"rate_per_spin": 0.05},
                "measurement": {"kind": "weak", "period": 0.5, "sigma": 0.7},
                "run": {"trajectories": 24, "unit_size": 4, "seed": 2}}
    one = trajsim.run(scenario, tmp_path / "one", threads=1)
    two = trajsim.run(scenario, tmp_path / "two", threads=2)
    for unit in sorted((tmp_path / "two" / "units").glob("*.npz"))[1::2]:
        unit.unlink()  # half the units lost: a resume recomputes them
    two = trajsim.run(scenario, tmp_path / "two", threads=2, resume=True)
    for table in ("trajectories", "events", "measurements", "summary"):
        a, b = getattr(one, table), getattr(two, table)
        assert a.equals(b), table


def test_a_low_fock_cut_off_is_recorded_and_warned_about(caplog):
    """Excited spins pour photons into a cavity cut at n_max = 6: the trajectories' top_fock
    column shows it, the manifest records its maximum and the run warns."""
    scenario = {**with_model(r=0.3, g=1.0, n_max=6), "initial_state": {"kind": "dicke", "m": 2},
                "time": {"t_end": 4.0, "n_samples": 9}, "run": {"trajectories": 8}}
    with caplog.at_level("WARNING", logger="trajsim"):
        result = trajsim.run(scenario, threads=1)
    top = result.manifest["points"][0]["top_fock_max"]
    assert top == result.summary.top_fock_mean.max() > hybrid.WARN_TOP_WEIGHT
    assert "top two Fock levels of model.n_max = 6" in caplog.text


def test_steady_gives_the_exact_hybrid_steady_state_beside_its_reduction():
    """trajsim steady on hybrid points: hybrid.steady_state's spin and cavity values, with the
    Eq. (11) reduction's xi2 and <Sy^2> beside them (close at sqrt(N) g / kappa = 0.08); a
    Fock ⊗ Dicke space over every j beyond the memory budget is refused naming the key."""
    from trajsim.steady import steady_table

    scenario = load({**with_model(g=0.02, kappa_int=0.2, r=0.3, n_max=8),
                     "sweep": {"model.N": [4, 5]}})
    table = steady_table(scenario)
    for row, point in zip(table.itertuples(), scenario.points):
        rho = hybrid.steady_state(point["model"]["N"], hybrid.Cavity.of(point["model"]))
        # steady is iterative (hybrid_steady.TOL = 1e-10 of the spins' rates), the LU direct
        assert row.Sy2 == pytest.approx(hybrid.spin_observables(rho, row.N)["Sy2"], rel=1e-9)
        assert row.n_cav == pytest.approx(np.sinh(0.3) ** 2 / 1.2, rel=1e-3)
        assert row.Sy2 == pytest.approx(row.Sy2_eq11, rel=1e-3)
    with pytest.raises(ScenarioError, match="^model.N: the hybrid steady state of .* over every j"):
        steady_table(load(with_model(N=200, gamma_phi=0.01)))


@pytest.mark.slow
def test_steady_in_the_reservoir_basis_agrees_with_the_fock_basis_at_n_4_and_16():
    """trajsim steady with the cavity in the reservoir's basis: at N = 4 the same spin and cavity
    values as in the Fock basis of a (n_max = 28 there, 12 in b) to 1e-8 (at a's automatic 16,
    <Sy^2> is 3e-5 off, with 6.5e-7 in the top two levels); at N = 16 (iterative: 561 states of
    a, 153 of b) to 1e-6, beside its Eq. (11) reduction."""
    from trajsim.steady import steady_row

    model = {"kind": "hybrid", "N": 4, "r": 0.5, "g": 0.1, "kappa_sqz": 1.0, "kappa_int": 0.05}
    for changes, n_max, rel in (({}, (28, 12), 1e-8), ({"N": 16, "g": 0.05}, (32, 8), 1e-6)):
        rows = [steady_row(load({"model": {**model, **changes, "n_max": n, "cavity_basis": basis},
                                 "time": {"t_end": 1.0}}).points[0])
                for basis, n in zip(("fock", "reservoir"), n_max)]
        for name in ("Sy2", "Sz", "xi2", "purity", "n_cav"):
            assert rows[1][name] == pytest.approx(rows[0][name], rel=0, abs=rel), name
    assert rows[1]["top_fock"] < 1e-9 and rows[1]["Sy2"] == pytest.approx(rows[1]["Sy2_eq11"],
                                                                          rel=1e-3)


@pytest.mark.slow
def test_the_report_reads_a_hybrid_record(tmp_path):
    """trajsim report on a hybrid run: the record detectors and the Bayesian filter (on the
    Eq. (11) reduction) run, and the report says which model and units it read."""
    import pandas as pd

    scenario = {**with_model(r=0.5, g=0.15, kappa_int=0.05, n_max=12),
                "initial_state": {"kind": "steady"}, "loss": {"rate_per_spin": 0.02},
                "time": {"t_end": 20.0, "n_samples": 41},
                "measurement": {"kind": "projective", "period": 0.5},
                "run": {"trajectories": 40, "seed": 3}}
    folder = trajsim.run(scenario, tmp_path / "run", threads=2).report()
    text = (folder / "report.md").read_text()
    assert "model.kind: hybrid" in text
    detection = pd.read_csv(folder / "record_detection.csv")
    assert set(detection.detector) >= {"threshold", "cusum", "bayes"}
    assert detection.losses.min() > 0 and detection.p_detect.notna().all()


def test_blocks_past_the_memory_budget_are_dropped_and_rebuilt_bit_for_bit():
    """With room for one block, local jumps and a loss keep rebuilding blocks: the samples are
    the same as with every block kept."""
    from trajsim.engines import WorkUnit
    from trajsim.engines.hybrid import HYBRID

    point = load({**with_model(gamma_phi=1.0, gamma_rel=1.0, n_max=8),
                  "initial_state": {"m": 0}, "loss": {"times": [1.0]},
                  "run": {"trajectories": 6}}).points[0]
    roomy, tight = HYBRID.build(point), HYBRID.build(point)
    tight.blocks.budget = 1.0
    unit = WorkUnit(0, 0, 0, 6)
    a, b = HYBRID.run_unit(roomy, unit, 1, True), HYBRID.run_unit(tight, unit, 1, True)
    assert len(roomy.blocks) > 2 and len(tight.blocks) == 1
    assert a.frames["trajectories"].equals(b.frames["trajectories"])
    assert a.frames["events"].equals(b.frames["events"])


def test_the_local_rate_steady_state_is_that_of_the_qubit_space():
    """hybrid.steady_blocks (every j of N = 3, j-resolved local jumps) against QuTiP's
    steadystate in Fock ⊗ (C^2)^3, and trajsim steady on the same point: to 1e-10."""
    from trajsim.steady import steady_row

    rates = Rates(gamma_phi=0.2, gamma_rel=0.1)
    cavity = hybrid.Cavity(g=0.5, kappa_sqz=1.0, r=0.4, kappa_int=0.3, Delta_c=0.3, n_max=6)
    H, c_ops, ops = qubit_model(3, cavity, rates)
    rho = qt.steadystate(H, c_ops)
    point = load({"model": {"kind": "hybrid", "N": 3, "r": 0.4, "g": 0.5, "kappa_sqz": 1.0,
                            "kappa_int": 0.3, "Delta_c": 0.3, "n_max": 6, "gamma_phi": 0.2,
                            "gamma_rel": 0.1}, "time": {"t_end": 1.0}}).points[0]
    row = steady_row(point)
    for name in ("Sy2", "Sz", "n_cav"):
        assert row[name] == pytest.approx(qt.expect(ops[name], rho), abs=1e-10), name
    assert set(hybrid.steady_blocks(3, cavity, rates)) == {(3, 3), (3, 1)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["weak", "projective"])
def test_unread_measurements_act_on_the_spins_as_the_exact_instrument(kind, within_sem):
    """An S_y measurement at t = 1 whose outcome nobody reads: the ensemble after it is the exact
    non-selective instrument (``instruments.non_selective``: rho_y ∘ W in the S_y basis of the
    spins, the cavity untouched) followed by Eq. (9); spin and cavity moments within 5 SE at
    every sample, including the one at t = 1 (after the measurement)."""
    from trajsim.instruments import _sy_basis, non_selective

    N, cavity = 3, hybrid.Cavity(g=0.5, kappa_sqz=1.0, r=0.4, kappa_int=0.3, n_max=6)
    measurement = {"kind": kind, "times": [1.0]} | ({"sigma": 0.7} if kind == "weak" else {})
    scenario = {"name": "unread", "model": {"kind": "hybrid", "N": N, "r": 0.4, "g": 0.5,
                                            "kappa_sqz": 1.0, "kappa_int": 0.3, "n_max": 6},
                "initial_state": {"kind": "css", "theta": 2.0, "phi": 0.3},
                "time": {"t_end": 2.0, "n_samples": 5}, "measurement": measurement,
                "run": {"trajectories": 3000, "seed": 6}}
    traj = trajsim.run(scenario, threads=2).trajectories.sort_values(["trajectory", "t"])
    psi = np.kron(hybrid.squeezed_vacuum(6, 0.4), dicke.coherent_spin_state(N, 2.0, 0.3))
    G, rho = hybrid.liouvillian(N, cavity), np.outer(psi, psi.conj())
    U = np.kron(np.identity(7), _sy_basis(N)[1])
    W = np.kron(np.ones((7, 7)), non_selective(kind, 0.7)(N))
    states = []
    for k, t in enumerate(np.linspace(0, 2.0, 5)):
        if k:
            rho = expm_multiply(G * 0.5, rho.ravel()).reshape(rho.shape)
        if t == 1.0:
            rho = U @ ((U.conj().T @ rho @ U) * W) @ U.conj().T
        states.append((N, rho))
    ref = reference_moments(states, cavity)
    for name in SPIN_MOMENTS + CAVITY_MOMENTS:
        within_sem(traj[name].to_numpy().reshape(-1, 5), ref[name], name)


@pytest.mark.slow
def test_outputs_do_not_depend_on_the_blas_thread_count(tmp_path):
    """A threaded BLAS sums in another order for another thread count (this block's expm
    differed in its last bits between 1 and 2 OpenBLAS threads): runs pin BLAS to one thread,
    so a run under OPENBLAS_NUM_THREADS=1 (as mpi_jobs/ sets) and one under 2 write the same
    bytes."""
    import os
    import subprocess
    import sys

    path = tmp_path / "s.yaml"
    path.write_text("model: {kind: hybrid, N: 20, r: 1.0, g: 0.1, kappa_int: 0.05, n_max: 30,\n"
                    "        gamma_phi: 0.1}\ntime: {t_end: 2.0, n_samples: 5}\n"
                    "run: {trajectories: 4, unit_size: 2}\n")
    outs = []
    for blas in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": blas, "OMP_NUM_THREADS": blas}
        res = subprocess.run([sys.executable, "-m", "trajsim", "run", path, "--out",
                              tmp_path / blas], env=env, capture_output=True, text=True,
                             timeout=600, check=False)
        assert res.returncode == 0, res.stderr
        outs.append({p.relative_to(tmp_path / blas): p.read_bytes()
                     for p in sorted((tmp_path / blas).rglob("*.parquet")) if p.is_file()})
    assert outs[0] == outs[1]


def test_observables_from_the_band_equal_the_traces_of_the_reduced_states():
    """The per-sample columns from the diagonals |delta| <= 2 equal Tr(rho O) of the full
    reduced spin and cavity density matrices."""
    from trajsim import exact
    from trajsim.engines.hybrid import observables

    psis = np.random.default_rng(0).normal(size=(3, 7, 6, 2)) @ np.array([1, 1j])
    unit = psis / np.linalg.norm(psis, axis=(1, 2))[:, None, None]
    rho_spin = np.einsum("snk,snl->skl", unit, unit.conj())
    rho_cavity = np.einsum("snk,smk->snm", unit, unit.conj())
    spin_ops = exact.observable_matrices(5)
    cavity_ops = hybrid.cavity_observables(hybrid.Cavity(0, 1, 0, n_max=6))
    expected = [[np.trace(rho @ spin_ops[name]).real for name in trajsim.dicke.OBSERVABLES[2:]]
                + [np.trace(rc @ cavity_ops[name]).real for name in hybrid.CAVITY_OBSERVABLES]
                for rho, rc in zip(rho_spin, rho_cavity)]
    assert np.allclose(observables(psis, 5, hybrid.Cavity(0, 1, 0, n_max=6)), expected, rtol=0,
                       atol=1e-14)


@pytest.mark.parametrize("extra", [{"loss": {"rate_per_spin": 0.05}},
                                   {"measurement": {"kind": "weak", "sigma": 2.0,
                                                    "period": 4.0}},
                                   {"measurement": {"kind": "projective", "period": 2.0},
                                    "loss": {"times": [2.2]}}])
@pytest.mark.parametrize("gamma_rel", [0.05, 0.0])
def test_the_shared_no_jump_path_gives_each_trajectory_its_own_bits(monkeypatch, extra,
                                                                    gamma_rel):
    """Trajectories from a pure state share the no-jump path of their first stretch
    (``HybridSetup.shared_path``) up to their own jump: samples, events and outcomes equal bit
    for bit those of trajectories that step alone, with a checkpoint at every step and with two
    kept (every few steps); with local rates (Python makes the jumps) and without (the
    compiled loop, here returning to Python after each event); the path ends at the first
    measurement, which a trajectory that does not jump on it makes after it, also when a loss
    follows before the next stop."""
    from trajsim.compiled import krylov
    from trajsim.engines import WorkUnit
    from trajsim.engines import hybrid as engine
    from trajsim.engines.hybrid import HYBRID

    if not gamma_rel:
        monkeypatch.setattr(engine, "EVENT_BUFFER", 1)
    point = load({**with_model(gamma_rel=gamma_rel, n_max=8, N=5),
                  "initial_state": {"m": -2.5},
                  "time": {"t_end": 6.0, "n_samples": 13}, **extra,
                  "run": {"trajectories": 16}}).points[0]
    unit = WorkUnit(0, 0, 0, 16)
    alone = HYBRID.build(point)
    alone.shared_path = lambda: None
    b = HYBRID.run_unit(alone, unit, 5, True)
    for kept in (64, 2):
        monkeypatch.setattr(krylov, "PATH_CHECKPOINTS", kept)
        shared = HYBRID.build(point)
        a = HYBRID.run_unit(shared, unit, 5, True)
        path = shared.shared[0]
        assert path.betas.size > 4
        assert len(path.checkpoints) == (path.betas.size if kept == 64 else 2)
        first = a.frames["events"].groupby("trajectory").t.min()
        assert 0 < (first < shared.schedule[0][path.last - 1]).sum() < 16  # some jump on it
        for name, frame in a.frames.items():
            assert frame.equals(b.frames[name]), name


@pytest.mark.parametrize("rates", [Rates(), LOCAL])
def test_the_compiled_jump_is_the_python_one(rates):
    """``hybrid_loop.jump`` draws channel c with probability ||J_c psi||^2 over their sum
    (J_c = F_c ⊗ 1 of the cavity, ``engines.hybrid.cavity_factors``, or 1 ⊗ K_c of a local
    route, ``HybridBlock.packed``) as ``engines.pick`` does from the same stream (the same
    c), and leaves J_c psi normalised, in the block of c's j."""
    from trajsim.compiled import hybrid_loop, rng_states
    from trajsim.engines import pick
    from trajsim.engines.hybrid import SPIN_CHANNELS, SPIN_CODE, build_block, cavity_factors

    for basis in ("fock", "reservoir"):
        cavity = hybrid.Cavity(g=0.5, kappa_sqz=1.0, r=0.4, kappa_int=0.3, n_max=5, basis=basis)
        names, lower, upper = cavity_factors(cavity)
        block = build_block(3, 3, cavity, rates)
        assert names == ["cavity_sqz", "cavity_int"]
        rng = np.random.default_rng(3)
        streams = rng_states(1, 0, np.arange(60))
        chosen = set()
        for stream in streams:
            psi = rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4))
            phis = [F @ psi if S is None else psi @ S.T for _, _, F, S in block.channels]
            python = stream.copy()
            c = pick([np.vdot(phi, phi).real for phi in phis], python)
            x = np.zeros(6 * 6, complex)
            x[:24] = psi.ravel()
            code, two_j = hybrid_loop.jump(x[:24].copy(), 4, lower, upper, block.packed[2], x,
                                           stream)
            name = names[code] if code < SPIN_CODE else SPIN_CHANNELS[code - SPIN_CODE]
            assert (name, two_j) == block.channels[c][:2]
            assert np.array_equal(stream, python)
            expected = (phis[c] / np.linalg.norm(phis[c])).ravel()
            np.testing.assert_allclose(x[:expected.size], expected, rtol=0, atol=1e-15)
            chosen.add(name)
        assert chosen == {name for name, *_ in block.channels}


def test_the_compiled_loss_is_the_python_one():
    """``hybrid_loop.jump`` without the cavity's channels draws one of block (N, j)'s loss
    Kraus operators 1 ⊗ K
    (``HybridBlock.losses``: j -+ 1/2, a spin down or up lost) with probability
    ||(1 ⊗ K) psi||^2 over their sum, as ``engines.pick`` does from the same stream, and leaves
    (1 ⊗ K) psi normalised in the block of N - 1 spins."""
    from trajsim.compiled import hybrid_loop, rng_states
    from trajsim.engines import pick
    from trajsim.engines.hybrid import SPIN_CHANNELS, SPIN_CODE, build_block

    block = build_block(4, 2, CAVITY, LOCAL, lossy=True)
    assert len(block.losses) == 4
    rng = np.random.default_rng(4)
    chosen = set()
    for stream in rng_states(1, 0, np.arange(40)):
        psi = rng.normal(size=(6, 3)) + 1j * rng.normal(size=(6, 3))
        phis = [psi @ K.T for *_, K in block.losses]
        python = stream.copy()
        c = pick([np.vdot(phi, phi).real for phi in phis], python)
        x = np.zeros(6 * 5, complex)
        none = np.zeros((0, 6))
        code, two_j = hybrid_loop.jump(psi.ravel().copy(), 3, none, none, block.packed[3], x,
                                       stream)
        assert (SPIN_CHANNELS[code - SPIN_CODE], two_j) == block.losses[c][:2]
        assert np.array_equal(stream, python)
        expected = (phis[c] / np.linalg.norm(phis[c])).ravel()
        np.testing.assert_allclose(x[:expected.size], expected, rtol=0, atol=1e-15)
        chosen.add(c)
    assert chosen == {0, 1, 2, 3}


@pytest.mark.parametrize("kind", ["projective", "weak", "copies"])
def test_the_compiled_spin_readout_is_the_kraus_operator_on_the_spin_factor(kind):
    """``readout.measure_spins`` on psi[n, k] (Fock ⊗ V_j): the outcomes drawn from
    p_m = sum_n |<n, m_y|psi>|^2 (``readout.sy_kraus`` on those weights, from the same stream),
    and psi <- (1 ⊗ U a U^dag) psi normalised (copies: psi normalised)."""
    from trajsim.compiled import COPIES, PROJECTIVE, WEAK, rng_states
    from trajsim.compiled.readout import measure_spins, sy_kraus
    from trajsim.instruments import _sy_basis

    code = {"projective": PROJECTIVE, "weak": WEAK, "copies": COPIES}[kind]
    shots = 3 if kind == "copies" else 1
    my, U = _sy_basis(4)
    rng = np.random.default_rng(8)
    outcomes = set()
    for stream in rng_states(2, 0, np.arange(30)):
        psi = rng.normal(size=(5, 5)) + 1j * rng.normal(size=(5, 5))
        psi_y = psi @ U.conj()
        reference, out_ref = stream.copy(), np.zeros(shots)
        a = sy_kraus((np.abs(psi_y) ** 2).sum(axis=0), my, code, 0.8, reference, out_ref)
        expected = psi if kind == "copies" else (psi_y * a) @ U.T
        x, out = psi.ravel().copy(), np.zeros(shots)
        measure_spins(x, U, my, code, 0.8, stream, out)
        assert np.array_equal(out, out_ref) and np.array_equal(stream, reference)
        np.testing.assert_allclose(x, (expected / np.linalg.norm(expected)).ravel(), rtol=0,
                                   atol=1e-14)
        outcomes.update(out)
    if kind == "weak":
        assert not outcomes <= set(my)  # y = m_y + sigma z
    else:
        assert outcomes <= set(my) and len(outcomes) >= 3
