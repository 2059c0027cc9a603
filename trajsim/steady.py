"""``trajsim steady``: exact steady-state tables for every point of a scenario sweep.

For Eq. (2) alone the block j = N/2 steady state is closed form: the dark state of Eqs. (6)-(7)
for even N, rho ∝ (Sigma^dag Sigma)^-1 (Eq. 16/D5) for odd N.  With collective decay or
one-axis twisting it is solved exactly in j = N/2, and with local dephasing or relaxation over
all j (sparse, N up to ~60; local rates below MIN_LOCAL_RATE of the collective ones are
refused: the steady state is singular as they vanish).  Columns: the swept values, N, r, xi2,
purity (Eq. 2 only), <Sy^2>, <Sz>, <j>, the steady jump rate Gamma Tr(rho Sigma^dag Sigma)
(Eq. 2 only) and, when asked (``gaps=True``; it takes most of the time: ~8 s per point at
N = 200), the Liouvillian gap
of Eq. (2) in j = N/2 (N <= 300): 'gap' over all operators and 'gap_even' in the sector of even
coherences m - m' (exact.even_coherences), the one that governs relaxation from Dicke states
and after spin loss.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import exact, groups, hybrid, hybrid_steady
from .engines.grouped import classes_of
from .memory import memory_budget
from .model import Rates, build_block
from .point import shown
from .scenario import Scenario, ScenarioError

log = logging.getLogger("trajsim")

GAP_MAX_N = 300
#: Local rates (gamma_phi + gamma_rel) below this fraction of the collective ones are refused:
#: they alone set the steady state's weights over j (a singular limit: gamma_local -> 0+ is a
#: mixture over j, gamma_local = 0 the j = N/2 state), which the exact solves do not resolve
#: below it (N = 4, r = 0.5: at 1e-10 within 1e-6 of the limit, at 1e-14 off by 1e-3, at 1e-300
#: the pure j = N/2 state; the hybrid's GMRES ran for minutes).
MIN_LOCAL_RATE = 1e-8
LOCAL_MAX_N = 60
#: Largest product space of model.groups whose steady state is solved (two classes of 11
#: spins, 144 states: ~10 s; its sparse LU grows as about the third power of the states squared).
GROUPED_MAX_DIM = 150


def grouped_row(point: dict) -> dict:
    """The exact steady state of classes of spins (``groups.steady_state``) of a small
    ``model.groups`` point: N, r, xi2, purity, <Sy^2>, <Sz> of the total spin, and <S^2>'s j
    (j(j + 1) = <S^2>: not a quantum number once the classes differ)."""
    m = point["model"]
    classes = classes_of(point)
    dim = groups.dimension(classes)
    if dim > GROUPED_MAX_DIM:
        raise ScenarioError(f"model.groups: the exact steady state of classes of spins is limited "
                            f"to {GROUPED_MAX_DIM} product states (here {dim}); run trajectories "
                            "(trajsim run) instead")
    try:
        rho = groups.steady_state(classes, Rates.of(m))
    except exact.NotUnique as err:
        raise ScenarioError(f"model.groups: {err}") from None
    o = groups.moments(rho, classes)
    S2 = o["Sx2"] + o["Sy2"] + o["Sz2"]
    return {"N": m["N"], "r": m["r"], "xi2": o["xi2"], "purity": float(np.trace(rho @ rho).real),
            "Sy2": o["Sy2"], "Sz": o["Sz"], "j": float(np.sqrt(S2 + 0.25) - 0.5),
            "jump_rate": np.nan, "gap": np.nan, "gap_even": np.nan}


def hybrid_row(point: dict) -> dict:
    """The exact steady state of Eq. (9) of a hybrid point, over every j with local rates
    (``hybrid_steady.steady_state``: iterative, up to the memory budget): the spin columns of
    ``steady_row`` (purity: of the spins' reduced state, summed over j blocks), the cavity's
    <a^dag a> ('n_cav') and top-two-level weight ('top_fock', with a warning above
    ``hybrid.WARN_TOP_WEIGHT``, as a run's), and xi2 and <Sy^2> of the Eq. (11) model with
    Gamma, gamma_coll of Eqs. (12)-(13) ('xi2_eq11', 'Sy2_eq11') beside them."""
    m = point["model"]
    N, dim = m["N"], (m["n_max"] + 1) * (m["N"] + 1)
    cavity, rates = hybrid.Cavity.of(m), Rates.of(m)
    kappa, spins = m["kappa_sqz"] + m["kappa_int"], hybrid_steady.spin_rate(cavity, rates)
    if spins < hybrid_steady.MIN_SPIN_RATE * kappa:
        raise ScenarioError(f"model.g: the spins' rate (4 g^2 / kappa and the local rates) "
                            f"{spins:.2g} is below {hybrid_steady.MIN_SPIN_RATE:g} of the "
                            "cavity's kappa: their steady state is not resolved in double "
                            "precision (without any, it is not unique)")
    need = hybrid_steady.memory(N, cavity, rates)
    if need > memory_budget():
        advice = ("model.cavity_basis: reservoir (where the cavity stays near the squeezed "
                  "vacuum it needs far fewer levels), or " if m["cavity_basis"] == "fock" else "")
        raise ScenarioError(f"model.N: the hybrid steady state of (n_max + 1)(N + 1) = {dim} "
                            f"states{' over every j' if rates.local() else ''} needs "
                            f"{need / 1e9:.1f} GB, over the memory budget of "
                            f"{memory_budget() / 1e9:.1f} GB; try {advice}run trajectories "
                            "(trajsim run) instead")
    try:
        blocks = hybrid_steady.steady_state(N, cavity, rates)
    except hybrid_steady.NotConverged as err:
        raise ScenarioError(f"model.N: the hybrid steady state did not converge: {err}"
                            ) from None
    spins = {key: hybrid.spin_state(rho, key[1]) for key, rho in blocks.items()}
    cavities = sum(hybrid.cavity_state(rho, key[1]) for key, rho in blocks.items())
    o = exact.expectations(spins)
    populations = np.real(np.diag(cavities))
    top = float(populations[-2:].sum())
    warning = hybrid.truncation_warning(top, m["n_max"], "the steady state holds")
    if warning:
        log.warning(warning)
    reduced = steady_row({**point, "model": {**m, "kind": "spin"}})
    return {"N": N, "r": m["r"], "xi2": o["xi2"],
            "purity": sum(np.trace(rho @ rho).real for rho in spins.values()),
            "Sy2": o["Sy2"], "Sz": o["Sz"], "j": o["j"], "jump_rate": np.nan,
            "gap": np.nan, "gap_even": np.nan,
            "n_cav": sum(hybrid.photons(rho, key[1], cavity) for key, rho in blocks.items()),
            "top_fock": top,
            "xi2_eq11": reduced["xi2"], "Sy2_eq11": reduced["Sy2"]}


def _check_local_rates(m: dict, collective: float) -> None:
    """Refuse local rates that are not 0 but below MIN_LOCAL_RATE of the collective ones."""
    local = m["gamma_phi"] + m["gamma_rel"]
    if 0 < local < MIN_LOCAL_RATE * collective:
        key = "gamma_phi" if m["gamma_phi"] > 0 else "gamma_rel"
        raise ScenarioError(f"model.{key}: local rates of {local:.2g}, below {MIN_LOCAL_RATE:g} of "
                            f"the collective ones ({collective:.2g}), set the steady state's "
                            "weights over j but are not resolved by the exact solve; give at "
                            f"least {MIN_LOCAL_RATE * collective:.2g} (the limit of small local "
                            "rates) or 0 (j = N/2 alone)")


def steady_row(point: dict, gaps: bool = False) -> dict:
    m = point["model"]
    _check_local_rates(m, m["Gamma"] + m["gamma_coll"])  # a hybrid point's: Eqs. (12)-(13)
    if m.get("kind") == "hybrid":
        return hybrid_row(point)
    N, r, Gamma = m["N"], m["r"], m["Gamma"]
    local = m["gamma_phi"] > 0 or m["gamma_rel"] > 0
    if not (Gamma > 0 or m["gamma_coll"] > 0 or m["gamma_rel"] > 0):  # nothing relaxes
        raise ScenarioError(
            "model.gamma_phi: dephasing alone leaves every state diagonal in S_z stationary, so "
            "there is no unique steady state; switch on Gamma, gamma_coll or gamma_rel"
            if m["gamma_phi"] > 0 else
            "model: without dissipation (Gamma, gamma_coll, gamma_phi and gamma_rel all 0) "
            "there is no unique steady state; switch one rate on")
    if "groups" in m:
        return grouped_row(point)
    if local or m["gamma_coll"] > 0 or m["chi"] != 0 or Gamma == 0:
        if local and N > LOCAL_MAX_N:
            raise ScenarioError(f"model.N: the exact Eq. (11) stationary state is limited to "
                             f"N <= {LOCAL_MAX_N} (its size grows as N^4)")
        try:
            o = exact.stationary_observables(Rates.of(m), N)
        except exact.NotUnique as err:
            raise ScenarioError(f"model: {err}") from None
        purity = jump_rate = np.nan
    else:
        o = exact.steady_observables(N, r)
        purity = o["purity"]
        lam = np.concatenate(build_block(N, N, Rates(Gamma=Gamma, r=r)).lam)
        jump_rate = 0.0 if np.any(lam == 0) else (N + 1) / np.sum(1.0 / lam)
    gap_columns = {name: exact.liouvillian_gap(N, r, Gamma, even_only=even)
                   if gaps and 2 <= N <= GAP_MAX_N and Gamma > 0 else np.nan
                   for name, even in (("gap", False), ("gap_even", True))}
    return {"N": N, "r": r, "xi2": o["xi2"], "purity": purity, "Sy2": o["Sy2"], "Sz": o["Sz"],
            "j": o["j"], "jump_rate": jump_rate, **gap_columns}


def steady_table(scenario: Scenario, gaps: bool = False, progress: bool = False) -> pd.DataFrame:
    """One row per sweep point: its swept values and ``steady_row``."""
    rows = []
    for p, point in enumerate(tqdm(scenario.points, desc="steady states", unit="point",
                                   disable=not progress)):
        swept = {key: point[key.split(".")[0]][key.split(".")[1]] for key in scenario.swept}
        swept = {key: shown(v) if isinstance(v, (dict, list)) else v for key, v in swept.items()}
        rows.append({"point": p, **swept, **steady_row(point, gaps)})
    return pd.DataFrame(rows)
