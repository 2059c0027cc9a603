"""Mean-field theory (App. B) and the linearised closed forms (App. C, Sec. V, App. H)."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from trajsim import cavity, exact
from trajsim import meanfield as mf
from trajsim.model import Rates


def _exact_moment_derivatives(rates: Rates, N: int, two_m: int) -> np.ndarray:
    """d/dt (<Sz>, <Sx^2>, <Sy^2>, C_ZZ) from the exact Eq. (11) generator at |N/2, m>."""
    layout = exact._Layout.reachable(N, N, 0, local=True)
    rho = np.zeros((N + 1, N + 1))
    rho[(two_m + N) // 2, (two_m + N) // 2] = 1.0
    vec = np.zeros(layout.size, complex)
    vec[: rho.size] = rho.ravel()
    d = exact.expectations(layout.split(exact._generator(layout, rates, 0.0) @ vec))
    return np.array([d["Sz"], d["Sx2"], d["Sy2"], d["Sz2"] - 2 * (two_m / 2) * d["Sz"]])


@pytest.mark.parametrize("two_m", [-12, -8, -2, 4, 10])
def test_rhs_is_the_exact_moment_equation_at_dicke_states(two_m):
    """Dicke states have definite Sz, so the cumulant closure (B1) is exact there and Eqs.
    (B2)-(B5) must equal the exact derivatives (this is what exposes the (B5) typo)."""
    N = 12
    rates = Rates(Gamma=1.0, r=0.4, gamma_coll=0.3, gamma_phi=0.2, gamma_rel=0.1)
    m = two_m / 2
    y = np.array([m, (N / 2 * (N / 2 + 1) - m**2) / 2, (N / 2 * (N / 2 + 1) - m**2) / 2, 0.0])
    np.testing.assert_allclose(mf.rhs(y, rates, N), _exact_moment_derivatives(rates, N, two_m),
                               rtol=1e-10, atol=1e-10)


def test_linearised_c2_matches_the_mean_field_steady_state_at_large_N():
    """Eq. (C2) is the N >> 1, <Sz> ~ -N/2 limit of the steady state of Eqs. (B2)-(B5)."""
    N = 1e6
    rates = Rates(Gamma=1.0, r=1.0, gamma_coll=1e-3, gamma_rel=1e-2)
    xi2 = mf.xi2(mf.steady_moments(rates, N), N)
    assert xi2 == pytest.approx(mf.xi2_linearised(N, rates), rel=1e-4)


def test_dephasing_bound_eq21_is_the_mean_field_minimum_over_r():
    """Eq. (21): for gamma_phi -> 0 the steady xi^2 is bounded by 1/2 + sqrt(N)/(N+1), reached at
    r = ln(N)/8.  gamma_phi = 1e-4 Gamma leaves the fixed point 5e-6 above the bound at N = 1000."""
    N = 1000

    def xi2(r):
        return mf.xi2(mf.steady_moments(Rates(Gamma=1.0, r=r, gamma_phi=1e-4), N), N)

    best = minimize_scalar(xi2, bounds=(0.3, 1.5), method="bounded", options={"xatol": 1e-4})
    assert best.x == pytest.approx(np.log(N) / 8, abs=0.01)
    assert best.fun == pytest.approx(mf.xi2_dephasing_bound(N), abs=2e-5)
    assert min(xi2(r) for r in (0.3, 0.6, 1.2, 2.0)) > mf.xi2_dephasing_bound(N)


def test_optimal_kappa_sqz_c6():
    """Eq. (C6): minimising the linearised (C3) over kappa_sqz, and the full mean-field steady
    state over (kappa_sqz, r), both land on kappa_int sqrt(1 + C_rel)."""
    g, kappa_int, gamma_rel, N = 1.0, 500.0, 0.04, 1e4
    k6 = mf.kappa_sqz_optimal(g, N, kappa_int, gamma_rel)

    def c3(log_k):
        rates = cavity.squeezed_reservoir_rates(g, np.exp(log_k), kappa_int, np.inf, gamma_rel=gamma_rel)
        return mf.xi2_linearised(N, rates)

    linear = minimize_scalar(c3, bounds=(np.log(k6) - 3, np.log(k6) + 3), method="bounded",
                             options={"xatol": 1e-8})
    assert np.exp(linear.x) == pytest.approx(k6, rel=1e-3)  # (C6) drops O(1/N)
    # (C5) drops the kappa_sqz/N numerator term of (C4): relative size sqrt(1 + C)/(2N) at the optimum
    C = cavity.cooperativity(g, kappa_int, gamma_rel, N)
    assert linear.fun == pytest.approx(mf.xi2_cooperativity(C), rel=np.sqrt(1 + C) / N)
    kappa, _, _ = mf.optimise_cavity(N, 1.0, 500.0, 0.04)
    assert kappa == pytest.approx(k6, rel=5e-3)


def test_cooperativity_scaling_c5():
    """Eq. (C5)/(19), Fig. S1 parameters (kappa_int = 500 g, gamma_rel = 0.04 g, eta_rel = 0.2):
    the mean-field xi^2 optimised over (kappa_sqz, r) falls as C_rel^(-1/2) and approaches
    2/(sqrt(C+1)+1) from above (finite r costs a factor that tends to 1; measured 1.08 at
    C = 2e4 and 1.05 at C = 2e5)."""
    Ns = np.array([1e5, 1e6])
    C = cavity.cooperativity(1.0, 500.0, 0.04, Ns)
    xi2 = np.array([mf.optimise_cavity(N, 1.0, 500.0, 0.04)[2] for N in Ns])
    slope = np.polyfit(np.log(C), np.log(xi2), 1)[0]
    assert slope == pytest.approx(-0.5, abs=0.03)
    ratio = xi2 / mf.xi2_cooperativity(C)
    assert np.all(ratio > 1.0) and ratio[1] < ratio[0] < 1.1


def test_h3_is_c3_without_collective_decay():
    """Eq. (H3) = Eq. (C3) with gamma_coll = 0 and Gamma = eta gamma_rel."""
    N, eta, gamma_rel = 50, 0.3, 0.02
    rates = Rates(Gamma=eta * gamma_rel, r=np.inf, gamma_rel=gamma_rel)
    assert mf.xi2_linearised(N, rates) == pytest.approx(mf.xi2_no_cavity_loss(N, eta), rel=1e-12)

