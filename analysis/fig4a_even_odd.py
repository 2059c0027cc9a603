"""Fig. 4(a): Wineland parameter of |N/2, -N/2> under Eq. (2) at r = 2.5 for N = 40 vs 41, from
trajectories (scenarios/fig4a_even_odd_dynamics.yaml) and the exact block evolution; inset: the
Liouvillian gap in j = N/2 and its minimum over all j versus N, over all operators and in the
sector of even coherences m - m' (where states from Dicke states and spin loss live).
Writes docs/figures/fig4a.png and fig4a_gaps.csv.        python analysis/fig4a_even_odd.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import trajsim
from trajsim import dicke, exact
from trajsim.model import Rates

ROOT = Path(__file__).resolve().parents[1]


def main():
    scen = trajsim.load_scenario(ROOT / "scenarios" / "fig4a_even_odd_dynamics.yaml")
    summary = trajsim.run(scen, ROOT / "analysis" / "output" / "fig4a", resume=True).summary
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for p, point in enumerate(scen.points):
        N, r = point["model"]["N"], point["model"]["r"]
        s = summary[summary.point == p]
        psi = dicke.dicke_state(N, -N)
        ref = exact.evolve(Rates(r=r), N, N, np.outer(psi, psi), s.t.to_numpy())
        line, = ax.plot(s.t, s.xi2, lw=1.5, label=f"N={N}, trajectories")
        ax.plot(s.t, ref["xi2"], "k:", lw=1)
        ax.axhline(exact.steady_observables(N, r)["xi2"], color=line.get_color(), ls="--", lw=0.6)
    ax.set(yscale="log", xlabel="Γt", ylabel="ξ²", title="Fig. 4(a): r = 2.5 (dotted: exact)")
    ax.legend(fontsize=8)
    rows = []
    for N in range(4, 61):
        row = {"N": N}
        for suffix, even in (("", False), ("_even", True)):
            gap_min, two_j = exact.minimum_gap(N, 2.5, even_only=even)
            row.update({f"gap_max_j{suffix}": exact.liouvillian_gap(N, 2.5, even_only=even),
                        f"gap_min_all_j{suffix}": gap_min, f"j_of_min{suffix}": two_j / 2})
        rows.append(row)
    gaps = pd.DataFrame(rows)
    inset = ax.inset_axes([0.1, 0.1, 0.35, 0.3])
    inset.plot(gaps.N, gaps.gap_max_j, ".", ms=3, label="j = N/2")
    inset.plot(gaps.N, gaps.gap_min_all_j, "x", ms=3, label="min over j")
    inset.plot(gaps.N, gaps.gap_max_j_even, ".", ms=3, label="j = N/2, even m−m′")
    inset.plot(gaps.N, gaps.gap_min_all_j_even, "+", ms=3, label="min over j, even m−m′")
    inset.set(yscale="log", xlabel="N", ylabel="gap / Γ")
    inset.legend(fontsize=6)
    fig.tight_layout()
    figures = ROOT / "docs" / "figures"
    fig.savefig(figures / "fig4a.png", dpi=120)
    gaps.to_csv(figures / "fig4a_gaps.csv", index=False, float_format="%.6g")
    print(gaps.iloc[::8].to_string(index=False))


if __name__ == "__main__":
    main()
