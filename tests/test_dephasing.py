"""App. E: the slow timescale of weak local dephasing from Liouvillian perturbation theory."""

import numpy as np
import pytest

from trajsim import dephasing, exact
from trajsim.model import Rates
from trajsim.scenario import ScenarioError, load
from trajsim.steady import steady_row


@pytest.mark.parametrize("r", [0.0, 0.5, 1.5])
def test_rate_matrix_gives_the_slow_eigenvalues_of_eq11(r):
    """eps M (Eq. E3, eps = 2 gamma_phi / Gamma) is the first-order spectrum near zero of the full
    Eq. (11) Liouvillian: its slowest rates match to O(eps) relative."""
    N, gamma_phi = 6, 1e-5
    layout = exact._Layout.reachable(N, N, 0, local=True)
    G = exact._generator(layout, Rates(Gamma=1.0, r=r, gamma_phi=gamma_phi), 0.0).toarray()
    n_blocks = N // 2 + 1
    slow = np.sort(np.abs(np.linalg.eigvals(G).real))[:n_blocks] / (2 * gamma_phi)
    first_order = np.sort(np.abs(np.linalg.eigvals(dephasing.transition_rates(N, r)).real))
    np.testing.assert_allclose(slow, first_order, atol=1e-3 * first_order.max())


@pytest.mark.parametrize("N", [16, 64, 128])
def test_r0_bottleneck_is_one_over_N(N):
    """App. E: at r = 0 only upward rates exist and the slowest is j = N/2 - 1 -> N/2, = 1/N,
    which is then the asymptotic decay rate (the dashed 1/N line of Fig. S4(b))."""
    M = dephasing.transition_rates(N, 0.0)
    assert np.allclose(np.triu(M, 1), 0.0)  # no j -> j - 1
    assert M[-1, -2] == pytest.approx(1 / N, rel=1e-12)
    assert dephasing.asymptotic_decay_rate(N, 0.0) == pytest.approx(1 / N, rel=1e-12)


def test_decay_rate_tends_to_one_half_at_large_r():
    """App. E: the asymptotic decay rate converges to 1/2 as r -> infinity (N << e^{5r})."""
    for N in (16, 64):
        assert dephasing.asymptotic_decay_rate(N, 6.0) == pytest.approx(0.5, rel=1e-4)
    assert dephasing.asymptotic_decay_rate(64, 0.5) < 0.1  # still ~1/N at small r (Fig. S4(b))


def test_weak_dephasing_steady_state_is_the_null_vector_of_M():
    """sum_j p_j rho0^(j) with M p = 0 is the gamma_phi -> 0 limit of the exact Eq. (11)
    stationary state; the difference is first order in gamma_phi / Gamma (measured 5e-6 in p_j
    and 4e-4 relative in xi2 at 1e-4, ten times less at 1e-5)."""
    N, r = 12, 0.6
    limit = dephasing.steady_observables(N, r)
    finite = exact.stationary_observables(Rates(Gamma=1.0, r=r, gamma_phi=1e-4), N)
    np.testing.assert_allclose(finite["P_two_j"], limit["P_two_j"], atol=2e-5)
    assert finite["xi2"] == pytest.approx(limit["xi2"], rel=1e-3)


@pytest.mark.parametrize("N", [12, 50, pytest.param(200, marks=pytest.mark.slow)])
def test_even_n_weak_dephasing_xi2_is_one_half_plus_e_minus_4r_over_two(N):
    """Measured identity (not in the paper): for even N the gamma_phi -> 0 steady state has
    xi^2 = (1 + e^{-4r})/2 exactly, for every N.  At r = ln(N)/8 that is 1/2 + 1/(2 sqrt N),
    below the mean-field Eq. (21) value 1/2 + sqrt(N)/(N+1); both tend to the -3 dB limit."""
    for r in (0.3, np.log(N) / 8, 1.0):
        assert dephasing.steady_observables(N, r)["xi2"] == pytest.approx((1 + np.exp(-4 * r)) / 2, rel=1e-10)
    assert (1 + N**-0.5) / 2 < 0.5 + np.sqrt(N) / (N + 1)


@pytest.mark.parametrize("gamma_phi", [1e-14, 1e-300])
def test_local_rates_too_small_to_resolve_are_refused(gamma_phi):
    """gamma_phi -> 0+ is a singular limit: the steady state is a mixture over j however small
    the rate, while at 0 it is the j = N/2 state alone.  The exact solve resolves it down to
    ~1e-10 of Gamma (N = 4, r = 0.5: xi2 0.567671 at 1e-6, 0.567667 at 1e-10); below
    steady.MIN_LOCAL_RATE it is refused, naming the key (at 1e-14 it was off by 1e-3, at 1e-300
    it returned the pure j = 2 state, xi2 0.457914, without a word)."""
    point = load({"model": {"N": 4, "r": 0.5, "gamma_phi": 1e-6},
                  "time": {"t_end": 1}}).points[0]
    assert steady_row(point)["xi2"] == pytest.approx(0.567671, abs=2e-6)
    tiny = {**point, "model": {**point["model"], "gamma_phi": gamma_phi}}
    with pytest.raises(ScenarioError, match="model.gamma_phi: local rates"):
        steady_row(tiny)
