"""The exact Eq. (9) reference (trajsim.hybrid): the squeezed vacuum of the cavity, and the
adiabatic limit, where the spins follow Eq. (11) with Gamma and gamma_coll of Eqs. (12)-(13)
up to corrections of relative order (sqrt(N) g / kappa)^2."""

import numpy as np
import pytest

from trajsim import cavity, exact, hybrid

N, R, KAPPA_SQZ, KAPPA_INT = 4, 0.5, 1.0, 0.2


def deviations(g: float, n_max: int = 16) -> dict:
    rho = hybrid.steady_state(N, hybrid.Cavity(g, KAPPA_SQZ, R, KAPPA_INT, n_max=n_max))
    ours = hybrid.spin_observables(rho, N)
    ref = exact.stationary_observables(cavity.squeezed_reservoir_rates(g, KAPPA_SQZ, KAPPA_INT, R), N)
    return {k: abs(ours[k] - ref[k]) / abs(ref[k]) for k in ("Sz", "Sy2", "Sx2", "xi2")}


def test_the_cavity_holds_the_diluted_squeezed_vacuum():
    """Without spins' back-action (g -> 0) the cavity is squeezed vacuum mixed with the vacuum
    of its internal loss: <a^dag a> = kappa_sqz sinh^2 r / (kappa_sqz + kappa_int)."""
    rho = hybrid.steady_state(N, hybrid.Cavity(1e-4, KAPPA_SQZ, R, KAPPA_INT, n_max=16))
    # the Fock tail beyond n_max = 16 (weight ~1e-7 per level) holds ~2e-6 of the photons
    assert hybrid.photons(rho, N) == pytest.approx(np.sinh(R) ** 2 / 1.2, rel=1e-5)
    assert np.trace(rho).real == pytest.approx(1.0, abs=1e-12)
    assert hybrid.truncation_weight(rho, N) < 1e-6


def test_adiabatic_limit_is_eq_11_with_eqs_12_13_to_second_order():
    """sqrt(N) g / kappa = 0.083 and 0.021: the deviations from Eq. (11) shrink like its square
    (exponent 1.7-2.5 over a factor 4) and reach 2e-4 (n_max = 16: truncation below 1e-6)."""
    coarse, fine = deviations(0.05), deviations(0.0125)
    for name in ("Sy2", "xi2", "Sx2"):
        order = np.log(coarse[name] / fine[name]) / np.log(4)
        assert 1.7 < order < 2.5, (name, order)
        assert fine[name] < 2e-4, name


def test_truncation_shows_in_the_top_level_weight():
    """n_max = 8 leaves 2e-4 in the top Fock level and a 2 % error in <Sy^2>: the weight is the
    warning sign."""
    rho = hybrid.steady_state(N, hybrid.Cavity(0.0125, KAPPA_SQZ, R, KAPPA_INT, n_max=8))
    assert hybrid.truncation_weight(rho, N) > 1e-4
    assert deviations(0.0125, n_max=8)["Sy2"] > 1e-2


@pytest.mark.parametrize("r, kappa_sqz, kappa_int, Delta_c",
                         [(0.5, 1.0, 0.0, 0.0), (0.5, 1.0, 0.05, 0.0), (0.5, 1.0, 0.05, 1.0),
                          (1.0, 0.98, 0.02, -5.0), (0.0, 1.0, 0.5, 2.0)])
def test_the_empty_cavity_emits_at_its_gaussian_rate(r, kappa_sqz, kappa_int, Delta_c):
    """cavity.cavity_jump_rate against the steady state of the engine's own cavity alone
    (hybrid.liouvillian with no spins, n_max = 60: the squeezed vacuum's tail there is
    ~1e-16): kappa_sqz <c^dag c> + kappa_int <a^dag a>, c = cosh r a + sinh r a^dag."""
    cav = hybrid.Cavity(g=0.0, kappa_sqz=kappa_sqz, r=r, kappa_int=kappa_int, Delta_c=Delta_c,
                        n_max=60)
    d = cav.n_max + 1
    rho = exact.solve_with_trace(hybrid.liouvillian(0, cav), np.arange(d) * (d + 1))
    rho = rho.reshape(d, d)
    a = np.diag(np.sqrt(np.arange(1, d)), 1)
    c = np.cosh(r) * a + np.sinh(r) * a.T
    exact_rate = (kappa_sqz * np.trace(c.conj().T @ c @ rho)
                  + kappa_int * np.trace(a.T @ a @ rho)).real
    assert cavity.cavity_jump_rate(kappa_sqz, kappa_int, r, Delta_c) == \
        pytest.approx(exact_rate, rel=1e-9, abs=1e-12)
