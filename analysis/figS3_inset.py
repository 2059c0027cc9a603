"""Fig. S3 inset: steady-state Wineland parameter for N = 30 vs 31, ideal and with weak local
dephasing (gamma_phi = 5e-5) or relaxation (gamma_rel = 1e-4), as exact curves over r, with
late-time trajectory ensembles (scenarios/figS3_inset_relaxation.yaml) on top.
Writes docs/figures/figS3_inset.png and .csv.      python analysis/figS3_inset.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import trajsim
from trajsim import exact
from trajsim.model import Rates

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"ideal": {}, "γφ=5e-5": {"gamma_phi": 5e-5}, "γrel=1e-4": {"gamma_rel": 1e-4}}


def exact_curve(N, r_grid, extra):
    if not extra:
        return [exact.steady_observables(N, r)["xi2"] for r in r_grid]
    return [exact.stationary_observables(Rates(r=r, **extra), N)["xi2"] for r in r_grid]


def main():
    scen = trajsim.load_scenario(ROOT / "scenarios" / "figS3_inset_relaxation.yaml")
    result = trajsim.run(scen, ROOT / "analysis" / "output" / "figS3_inset", resume=True)
    summary, points = result.summary, result.points
    t_end = scen.points[0]["time"]["t_end"]
    late = summary[summary.t >= t_end / 2].groupby("point").xi2.agg(["mean", "std", "count"])
    late = points.join(late, on="point")
    r_grid = np.linspace(0.1, 3.0, 30)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    rows = []
    for (label, extra), color in zip(SETTINGS.items(), ("k", "tab:red", "tab:blue")):
        for N, style in ((30, "-"), (31, "--")):
            curve = exact_curve(N, r_grid, extra)
            ax.plot(r_grid, curve, style, color=color, lw=1.2, label=f"{label}, N={N}")
            if label == "γrel=1e-4":
                for _, row in late[late["model.N"] == N].iterrows():
                    ref = exact_curve(N, [row["model.r"]], extra)[0]
                    ax.plot(row["model.r"], row["mean"], "o", color=color, mfc="none")
                    rows.append({"N": N, "r": row["model.r"], "xi2_traj_late": row["mean"],
                                 "xi2_traj_time_spread": row["std"], "xi2_exact": ref})
    ax.set(yscale="log", xlabel="r", ylabel="steady-state ξ²",
           title="Fig. S3 inset: exact (lines), trajectories with γrel (circles)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    (ROOT / "docs" / "figures").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "figures" / "figS3_inset.png", dpi=120)
    table = pd.DataFrame(rows)
    table.to_csv(ROOT / "docs" / "figures" / "figS3_inset.csv", index=False, float_format="%.5g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
