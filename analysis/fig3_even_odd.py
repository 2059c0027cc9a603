"""Fig. 3: steady-state Wineland parameter and purity of Eq. (2) for N = 200 vs 201 against r, with
late-time trajectory averages (scenarios/fig3_even_odd.yaml), and the inset: min over r of xi^2
for even and odd N against 2/(N+2).  Writes docs/figures/fig3.png, fig3.csv, fig3_inset.csv.
                                                              python analysis/fig3_even_odd.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from figure_files import save
from scipy.optimize import minimize_scalar

import trajsim
from trajsim import exact

ROOT = Path(__file__).resolve().parents[1]
LATE = 3.0  # late-time window t >= LATE / Gamma of the trajectory runs


def minimum_xi2(N: int) -> tuple[float, float]:
    """(r, xi2) at the minimum over r of the exact steady xi^2 (log xi^2 is smooth in r)."""
    best = minimize_scalar(lambda r: np.log(exact.steady_observables(N, r)["xi2"]),
                           bounds=(0.05, 0.5 * np.log(N) + 1.5), method="bounded",
                           options={"xatol": 1e-5})
    return best.x, float(np.exp(best.fun))


def steady_values(N: int, r: float) -> dict:
    o = exact.steady_observables(N, r)
    return {"N": N, "r": r, "xi2": o["xi2"], "purity": o["purity"], "Sy2": o["Sy2"]}


def main():
    result = trajsim.run(ROOT / "scenarios" / "fig3_even_odd.yaml",
                         ROOT / "analysis" / "output" / "fig3", resume=True)
    summary = result.sweep_summary
    late = (summary[summary.t >= LATE].groupby(["model.N", "model.r"])
            .agg(xi2_traj=("xi2", "mean"), Sy2_traj=("Sy2_mean", "mean"),
                 Sy2_sem=("Sy2_sem", "mean")).reset_index())
    r = np.linspace(0.02, 3.0, 150)
    curves = pd.DataFrame([steady_values(N, x) for N in (200, 201) for x in r])
    exact_late = [exact.steady_observables(int(N), x)
                  for N, x in zip(late["model.N"], late["model.r"])]
    late["xi2_exact"] = [o["xi2"] for o in exact_late]
    late["Sy2_exact"] = [o["Sy2"] for o in exact_late]
    inset = pd.DataFrame([{"N": N, **dict(zip(("r_min", "xi2_min"), minimum_xi2(N))),
                           "heisenberg": 2 / (N + 2)}
                          for N in [10, 11, 20, 21, 50, 51, 100, 101, 200, 201, 400, 401]])
    inset["ratio"] = inset.xi2_min / inset.heisenberg

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for N, style in ((200, "-"), (201, "--")):
        c = curves[curves.N == N]
        ax.plot(c.r, c.xi2, style, color="C0", label=f"ξ², N={N}")
        ax.plot(c.r, c.purity, style, color="C1", label=f"purity, N={N}")
        pts = late[late["model.N"] == N]
        ax.plot(pts["model.r"], pts.xi2_traj, "o" if N % 2 == 0 else "s", mfc="none",
                color="k", label=f"trajectories, N={N} (t≥{LATE:g}/Γ)")
    ax.set(yscale="log", xlabel="r", title="Fig. 3: steady state of Eq. (2)")
    ax.legend(fontsize=7)
    for parity, marker in ((0, "o"), (1, "s")):
        c = inset[inset.N % 2 == parity]
        ax2.loglog(c.N, c.xi2_min, marker, label=("even" if parity == 0 else "odd") + " N: min_r ξ²")
    ax2.loglog(inset.N, inset.heisenberg, "k:", label="2/(N+2)")
    ax2.set(xlabel="N", title="inset: optimised ξ²")
    ax2.legend(fontsize=8)
    save(fig, "fig3", csv=late, inset=inset)
    print(late.to_string(index=False))
    print(inset.to_string(index=False))


if __name__ == "__main__":
    main()
