"""Fig. 4(b) and Fig. S2: parity-sensing traces with random spin losses and the conditional
<Sy^2> histogram by parity (scenarios/fig4b_parity_sensing.yaml via `trajsim report`), and the
exact S_y distribution of the Eq. (2) steady state for N = 200 vs 201 (Fig. S2).  Also the exact
steady <Sy^2> for N = 30..41 at r = 2.5.  Outputs docs/figures/fig4b.png, fig4b_histogram.png,
figS2.png, figS2.csv.                                   python analysis/fig4b_figS2.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

import trajsim
from trajsim import exact

ROOT = Path(__file__).resolve().parents[1]


def main():
    result = trajsim.run(ROOT / "scenarios" / "fig4b_parity_sensing.yaml",
                         ROOT / "analysis" / "output" / "fig4b", resume=True)
    folder = result.report()
    figures = ROOT / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "traces.png", figures / "fig4b.png")
    shutil.copy(folder / "histogram.png", figures / "fig4b_histogram.png")
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r, color in ((1.5, "tab:blue"), (2.5, "tab:orange"), (3.0, "tab:green")):
        for N, style in ((200, "-"), (201, "--")):
            my, p = exact.sy_distribution(N, r)
            ax.plot(my, p, style, color=color, lw=1, label=f"r={r}, N={N}")
    ax.set(yscale="log", ylim=(1e-12, 1.5), xlim=(-60, 60), xlabel="S_y outcome m_y",
           ylabel="probability", title="Fig. S2: exact steady-state S_y distribution")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(figures / "figS2.png", dpi=120)
    r = result.manifest["scenario"]["model"]["r"]
    table = pd.DataFrame([{"N": N, "r": r, "Sy2_exact": exact.steady_observables(N, r)["Sy2"],
                           "xi2_exact": exact.steady_observables(N, r)["xi2"]}
                          for N in range(30, 42)])
    table.to_csv(figures / "figS2.csv", index=False, float_format="%.6g")
    print(pd.read_csv(folder / "detection.csv").T.to_string())
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
