"""The iterative Eq. (9) steady state (trajsim.hybrid_steady) against the sparse LU of
hybrid.steady_state, and through trajsim steady."""

import numpy as np
import pytest

from trajsim import hybrid, hybrid_steady
from trajsim.model import Rates
from trajsim.scenario import ScenarioError, load
from trajsim.steady import steady_row


@pytest.mark.parametrize("N, cavity", [
    (4, hybrid.Cavity(g=0.3, kappa_sqz=0.98, r=1.0, kappa_int=0.02, n_max=8)),
    (5, hybrid.Cavity(g=0.3, kappa_sqz=0.98, r=1.0, kappa_int=0.02, Delta_c=0.3, n_max=8,
                      basis="reservoir")),
    (4, hybrid.Cavity(g=0.3, kappa_sqz=1.0, r=0.5, kappa_int=0.0, n_max=8)),  # no-jump dark state
    (5, hybrid.Cavity(g=0.6, kappa_sqz=1.0, r=0.5, kappa_int=0.0, Delta_c=0.5, n_max=6)),
    (6, hybrid.Cavity(g=0.8, kappa_sqz=0.5, r=0.8, kappa_int=0.1, Delta_c=-1.0, n_max=10)),
    (3, hybrid.Cavity(g=0.2, kappa_sqz=1.0, r=0.5, kappa_int=0.0, n_max=16)),  # needs refining
    (4, hybrid.Cavity(g=0.2, kappa_sqz=1.0, r=0.0, kappa_int=0.1, n_max=6)),  # G_s defective
    (4, hybrid.Cavity(g=0.2, kappa_sqz=0.0, r=0.5, kappa_int=0.1, n_max=6)),  # Gamma = 0
])
def test_the_iterative_steady_state_is_the_lu_one(N, cavity):
    """Even and odd N, both bases, Delta_c != 0, kappa_int = 0 (where the no-jump evolution has
    a dark state and the preconditioners need their shift; odd N there needs GMRES refined),
    sqrt(N) g / kappa from 0.4 to 4 (far from the adiabatic model P1 is built on), r = 0 and
    kappa_sqz = 0 (Eq. (11)'s collective decay alone: no eigenbasis, hence P1's Schur form):
    the same rho as the LU to 1e-10, Hermitian, unit trace, with
    ||G rho|| <= TOL (Gamma + gamma_coll) ||rho||."""
    blocks = hybrid_steady.steady_state(N, cavity)
    assert list(blocks) == [(N, N)]
    rho = blocks[(N, N)]
    assert np.abs(rho - hybrid.steady_state(N, cavity)).max() < 1e-10
    assert np.trace(rho).real == pytest.approx(1.0, abs=1e-13)
    assert np.array_equal(rho, rho.conj().T)
    residual = hybrid.liouvillian(N, cavity) @ rho.ravel()
    scale = 4 * cavity.g**2 / (cavity.kappa_sqz + cavity.kappa_int)  # Gamma + gamma_coll
    assert np.linalg.norm(residual) <= hybrid_steady.TOL * scale * np.linalg.norm(rho)


@pytest.mark.parametrize("N", [3, 4])
def test_with_local_rates_every_j_is_the_lu_ones(N):
    """Local dephasing and relaxation move j: the iterative blocks over every j (parity kept
    across them: every local Kraus operator shifts k and k' alike) are the sparse LU's of
    hybrid.steady_blocks, and carry the probabilities p_j."""
    cavity = hybrid.Cavity(g=0.3, kappa_sqz=0.98, r=1.0, kappa_int=0.02, Delta_c=0.2, n_max=6)
    rates = Rates(gamma_phi=0.05, gamma_rel=0.02)
    blocks, reference = hybrid_steady.steady_state(N, cavity, rates), \
        hybrid.steady_blocks(N, cavity, rates)
    assert sorted(blocks) == sorted(reference) and len(blocks) == N // 2 + 1
    for key, rho in reference.items():
        assert np.abs(blocks[key] - rho).max() < 1e-10
    assert sum(np.trace(rho).real for rho in blocks.values()) == pytest.approx(1.0, abs=1e-13)
    assert all(np.trace(rho).real > 1e-3 for rho in blocks.values())


def test_an_iteration_that_does_not_converge_is_a_one_line_scenario_error(monkeypatch):
    """Two GMRES steps, not refined, cannot reach TOL: the solver says so, and trajsim steady
    turns it into a ScenarioError naming model.N."""
    monkeypatch.setattr(hybrid_steady, "RESTART", 2)
    monkeypatch.setattr(hybrid_steady, "MAX_RESTARTS", 1)
    monkeypatch.setattr(hybrid_steady, "MAX_REFINEMENTS", 1)
    cavity = hybrid.Cavity(g=0.3, kappa_sqz=0.98, r=1.0, kappa_int=0.02, n_max=8)
    with pytest.raises(ValueError, match="GMRES reached"):
        hybrid_steady.steady_state(4, cavity)
    point = load({"model": {"kind": "hybrid", "N": 4, "r": 1.0, "g": 0.3, "kappa_sqz": 0.98,
                            "cavity_basis": "reservoir",
                            "kappa_int": 0.02, "n_max": 8}, "time": {"t_end": 1.0}}).points[0]
    with pytest.raises(ScenarioError, match=r"^model.N: the hybrid steady state did not converge"):
        steady_row(point)


def test_a_bug_inside_the_solver_is_not_reported_as_bad_input(monkeypatch):
    """Only NotConverged becomes a one-line ScenarioError (exit 2); any other error keeps its
    traceback (exit 1)."""
    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr(hybrid_steady, "steady_state", broken)
    point = load({"model": {"kind": "hybrid", "N": 4, "r": 1.0, "g": 0.3, "kappa_sqz": 0.98,
                            "cavity_basis": "reservoir", "kappa_int": 0.02, "n_max": 8},
                  "time": {"t_end": 1.0}}).points[0]
    with pytest.raises(ValueError, match="a bug") as caught:
        steady_row(point)
    assert not isinstance(caught.value, ScenarioError)


def test_points_beyond_the_memory_budget_or_nearly_uncoupled_are_refused_naming_the_key():
    model = {"kind": "hybrid", "N": 1000, "r": 0.5, "g": 0.01, "kappa_sqz": 1.0,
             "kappa_int": 0.05, "n_max": 20}
    with pytest.raises(ScenarioError, match=r"^model.N: the hybrid steady state of .* GB"):
        steady_row(load({"model": model, "time": {"t_end": 1.0}}).points[0])
    for g in (0.0, 1e-5):
        with pytest.raises(ScenarioError, match=r"^model.g: the spins' rate .* double precision"):
            steady_row(load({"model": {**model, "N": 4, "g": g},
                             "time": {"t_end": 1.0}}).points[0])


@pytest.mark.slow
def test_the_shipped_hybrid_scenario_is_solved_in_under_a_minute():
    """scenarios/hybrid_parity_sensing.yaml (N = 8, 46 Fock levels of a, 414 states: out of the
    LU's reach) and its odd neighbour, in under a minute of wall time each (CPU time counts
    every BLAS thread: 60.7 s of it for one solve in a CI run); the even-odd contrast of <Sy^2>
    is there (2.4 at r = 1), and both agree with the reservoir basis cut at 28 levels (top
    weight 3e-8) to the Fock cut's own error (7e-4 of <Sy^2> at a top weight of 3.5e-7)."""
    import time
    from pathlib import Path

    path = Path(__file__).parent.parent / "scenarios" / "hybrid_parity_sensing.yaml"
    point = load(path).points[0]
    rows = []
    for N in (8, 9):
        for basis, n_max in (("fock", point["model"]["n_max"]), ("reservoir", 28)):
            model = {**point["model"], "N": N, "cavity_basis": basis, "n_max": n_max}
            start = time.perf_counter()
            rows.append(steady_row({**point, "model": model}))
            assert time.perf_counter() - start < 60
    even_fock, even_b, odd_fock, odd_b = rows
    assert even_fock["top_fock"] < 1e-6 and even_b["top_fock"] < 1e-7
    assert even_fock["Sy2"] == pytest.approx(even_b["Sy2"], rel=1e-3)
    assert odd_fock["Sy2"] == pytest.approx(odd_b["Sy2"], rel=1e-3)
    assert odd_b["Sy2"] / even_b["Sy2"] == pytest.approx(2.37, rel=0.01)


def test_a_steady_state_at_its_cut_off_is_warned_about(caplog):
    """g = 10^6 kappa pumps photons up to n_max = auto's 16 (chosen for the reservoir alone):
    6 % of the weight sits in the top two Fock levels, and `trajsim steady` says so, as a run
    does above hybrid.WARN_TOP_WEIGHT; at g = 0.1 (top weight 8e-7) it says nothing."""
    rows = {}
    for g in (1e6, 0.1):
        caplog.clear()
        point = load({"model": {"kind": "hybrid", "N": 2, "r": 0.5, "g": g},
                      "time": {"t_end": 1.0}}).points[0]
        rows[g] = steady_row(point)
        warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert bool(warned) == (g == 1e6), warned
        assert all("top two Fock levels of model.n_max = 16" in w for w in warned)
    assert rows[1e6]["top_fock"] > 0.01 and rows[0.1]["top_fock"] < 1e-6
