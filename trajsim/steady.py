"""``trajsim steady``: exact steady-state tables for every point of a scenario sweep.

For Eq. (2) alone the block j = N/2 steady state is closed form: the dark state of Eqs. (6)-(7)
for even N, rho ∝ (Sigma^dag Sigma)^-1 (Eq. 16/D5) for odd N.  With collective decay or
one-axis twisting it is solved exactly in j = N/2, and with local dephasing or relaxation over
all j (sparse, N up to ~60).  Columns: the swept values, N, r, xi2, purity (Eq. 2 only),
<Sy^2>, <Sz>, <j>, the steady jump rate Gamma Tr(rho Sigma^dag Sigma) (Eq. 2 only) and, when
asked (``gaps=True``; it takes most of the time: ~8 s per point at N = 200), the Liouvillian gap
of Eq. (2) in j = N/2 (N <= 300): 'gap' over all operators and 'gap_even' in the sector of even
coherences m - m' (exact.even_coherences), the one that governs relaxation from Dicke states
and after spin loss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import exact
from .model import Rates, build_block
from .scenario import Scenario, ScenarioError

GAP_MAX_N = 300
LOCAL_MAX_N = 60


def steady_row(point: dict, gaps: bool = False) -> dict:
    m = point["model"]
    N, r, Gamma = m["N"], m["r"], m["Gamma"]
    local = m["gamma_phi"] > 0 or m["gamma_rel"] > 0
    if not (Gamma > 0 or m["gamma_coll"] > 0 or local):
        raise ScenarioError("model: without dissipation (Gamma, gamma_coll, gamma_phi and gamma_rel "
                         "all 0) there is no unique steady state; switch one rate on")
    if local or m["gamma_coll"] > 0 or m["chi"] != 0 or Gamma == 0:
        if local and N > LOCAL_MAX_N:
            raise ScenarioError(f"model.N: the exact Eq. (11) stationary state is limited to "
                             f"N <= {LOCAL_MAX_N} (its size grows as N^4)")
        o = exact.stationary_observables(Rates.of(m), N)
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
        rows.append({"point": p, **swept, **steady_row(point, gaps)})
    return pd.DataFrame(rows)
