"""Mean-field theory of Eq. (11) (App. B) and its linearised closed forms (App. C, Sec. IV-V, App. H).

State y = (<Sz>, <Sx^2>, <Sy^2>, C_ZZ) with C_ZZ = <Sz^2> - <Sz>^2; <Sx> = <Sy> = 0 for a start
polarised along -z, so the Wineland parameter (Eq. 1) is xi^2 = N min(<Sx^2>, <Sy^2>) / <Sz>^2.

- ``rhs``: Eqs. (B2)-(B5) (second-order cumulant expansion, Eq. B1).  Eq. (B5) as printed has
  (e^{2r} Gamma + gamma_coll) <Sz^2>; the derivation (D^dag[L] Sz^2 for L = cosh r S- - sinh r S+)
  and the exact moment equations give (e^{2r} Gamma + gamma_coll) <Sx^2>, which is used here
  (at the pole |N/2, -N/2> the exact dC_ZZ/dt grows as N; the printed form gives e^{2r} Gamma N^2/4).
- ``evolve_moments`` / ``steady_moments``: their solution from |N/2, -N/2> and its long-time limit.
- ``xi2_linearised``: Eq. (C2) (<Sz> fixed at -N/2; gamma_rel -> gamma_rel + 2 gamma_phi covers
  weak dephasing); r -> infinity gives Eq. (C3) = Eq. (18).
- ``xi2_cooperativity`` / ``kappa_sqz_optimal``: Eqs. (C5)/(19) and (C6)/(20).
- ``xi2_dephasing_bound``: Eq. (21); ``xi2_no_cavity_loss``: Eq. (H3).
- ``optimise_cavity``: the steady xi^2 of Eqs. (B2)-(B5) with the cavity rates of Eqs. (12)-(13),
  minimised over (kappa_sqz, r) (Fig. S1).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import minimize, root

from . import cavity
from .model import Rates


def rhs(y: np.ndarray, rates: Rates, N: float) -> np.ndarray:
    """d/dt (<Sz>, <Sx^2>, <Sy^2>, C_ZZ) of Eqs. (B2)-(B5)."""
    Sz, Sx2, Sy2, Czz = y
    G, gc, gphi, grel = rates.Gamma, rates.gamma_coll, rates.gamma_phi, rates.gamma_rel
    ep, em = np.exp(2 * rates.r) * G, np.exp(-2 * rates.r) * G
    local = N * (gphi + grel / 2) / 2
    dSz = -(em / 2 + ep / 2 + gc + grel) * Sz - (G + gc) * (Sx2 + Sy2) - grel * N / 2

    def variance(e, S2):  # Eqs. (B3)/(B4) with e = e^{+-2r} Gamma
        return ((e + gc) * Sz**2 + ((2 * G + 2 * gc) * S2 - (G + gc) / 2) * Sz
                - (e + gc + 2 * gphi + grel) * S2 + (e + gc) * Czz + local)

    # (B5) as printed has <Sz^2> where <Sx^2> belongs (module docstring)
    dCzz = ((gc + G + grel) * Sz + (ep + gc) * Sx2 - (em + ep + 2 * gc + 2 * grel) * Czz
            + (em + gc) * Sy2 + grel * N / 2)
    return np.array([dSz, variance(ep, Sx2), variance(em, Sy2), dCzz])


def initial_state(N: float) -> np.ndarray:
    """|N/2, -N/2>: <Sz> = -N/2, <Sx^2> = <Sy^2> = N/4, C_ZZ = 0."""
    return np.array([-N / 2, N / 4, N / 4, 0.0])


def xi2(y: np.ndarray, N: float) -> np.ndarray:
    """Wineland xi^2 = N min(<Sx^2>, <Sy^2>) / <Sz>^2 (the state along the last axis of y)."""
    y = np.asarray(y)
    return N * np.minimum(y[..., 1], y[..., 2]) / y[..., 0] ** 2


def evolve_moments(rates: Rates, N: float, t: np.ndarray, y0: np.ndarray | None = None) -> np.ndarray:
    """Solution of Eqs. (B2)-(B5) on the times t (from 0) starting from y0 (default
    |N/2, -N/2>); shape (len(t), 4).

    The e^{2r} Gamma and N Gamma rates against the slow N/gamma_phi drift make the system
    stiff; LSODA (stiff BDF with automatic switching) crosses 10^9 fast times in ~10^3 steps,
    where Radau and BDF with finite-difference Jacobians stall at small step sizes.
    """
    y0 = initial_state(N) if y0 is None else y0
    sol = solve_ivp(lambda _, y: rhs(y, rates, N), (0.0, float(t[-1])), y0,
                    method="LSODA", t_eval=t, rtol=1e-10, atol=1e-12 * N)
    if not sol.success:
        raise RuntimeError(f"mean-field integration failed: {sol.message}")
    return sol.y.T


def _slowest_time(rates: Rates, N: float) -> float:
    """Longest relaxation time of Eqs. (B2)-(B5): the collective e^{2r}/Gamma and 1/(N Gamma),
    the local 1/gamma_rel, and the N/(2 gamma_phi) of dephasing (Sec. V)."""
    rates_ = [N * (rates.Gamma + rates.gamma_coll), np.exp(-2 * abs(rates.r)) * rates.Gamma,
              rates.gamma_rel, 2 * rates.gamma_phi / N]
    return 1.0 / min(s for s in rates_ if s > 0)


def steady_moments(rates: Rates, N: float) -> np.ndarray:
    """Steady state of Eqs. (B2)-(B5) reached from |N/2, -N/2>: integrated for 50 slowest
    times, then polished with a root solve of rhs = 0 (kept only when it stays close)."""
    y = evolve_moments(rates, N, np.array([0.0, 50 * _slowest_time(rates, N)]))[-1]
    fixed = root(lambda x: rhs(x, rates, N), y, method="hybr")
    if fixed.success and np.allclose(fixed.x, y, rtol=1e-6, atol=1e-9 * N):
        return fixed.x
    return y


def xi2_linearised(N: float, rates: Rates) -> float:
    """Eq. (C2) with gamma_rel -> gamma_rel + 2 gamma_phi (App. C 1); r = inf gives Eq. (C3)/(18)."""
    e = np.exp(-2 * rates.r)
    local = rates.gamma_rel + 2 * rates.gamma_phi
    num = (N + 1) * rates.gamma_coll + (N * e + 1) * rates.Gamma + local
    den = (N + 1) * rates.gamma_coll + (N + e) * rates.Gamma + local
    return num / den


def kappa_sqz_optimal(g: float, N: float, kappa_int: float, gamma_rel: float) -> float:
    """Eq. (C6): the kappa_sqz minimising Eq. (C4) for N >> 1 (~ kappa_int sqrt(C_rel), Eq. 20)."""
    return np.sqrt(kappa_int**2 + 4 * N * g**2 * kappa_int / gamma_rel)


def xi2_cooperativity(C_rel: float) -> float:
    """Eq. (C5): optimised linearised xi^2 = 2 / (sqrt(C_rel + 1) + 1) ~ 2 / sqrt(C_rel) (Eq. 19)."""
    return 2.0 / (np.sqrt(C_rel + 1.0) + 1.0)


def xi2_dephasing_bound(N: float) -> float:
    """Eq. (21): steady xi^2 >= 1/2 + sqrt(N)/(N + 1) for gamma_phi -> 0 (reached at r = ln(N)/8)."""
    return 0.5 + np.sqrt(N) / (N + 1)


def xi2_no_cavity_loss(N: float, eta_tilde: float) -> float:
    """Eq. (H3): (eta + 1) / (N eta + 1) for kappa_int = 0, r -> inf, eta = Gamma / gamma_rel."""
    return (eta_tilde + 1) / (N * eta_tilde + 1)


def optimise_cavity(N: float, g: float, kappa_int: float, gamma_rel: float,
                    gamma_phi: float = 0.0) -> tuple[float, float, float]:
    """(kappa_sqz, r, xi2) minimising the mean-field steady xi^2 for the cavity rates of
    Eqs. (12)-(13) (Nelder-Mead on (ln kappa_sqz, r) from Eq. (C6) and r = ln(N)/4)."""
    start = [np.log(kappa_sqz_optimal(g, N, kappa_int, gamma_rel)), np.log(N) / 4]

    def steady_xi2(p):
        rates = cavity.squeezed_reservoir_rates(g, np.exp(p[0]), kappa_int, p[1],
                                                gamma_rel=gamma_rel, gamma_phi=gamma_phi)
        return xi2(steady_moments(rates, N), N)

    best = minimize(steady_xi2, start, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8})
    return float(np.exp(best.x[0])), float(best.x[1]), float(best.fun)
