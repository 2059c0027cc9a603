"""Fig. 4(b) and Fig. S2: parity-sensing traces with random spin losses, and the <Sy^2>
distributions for even vs odd N, from scenarios/fig4b_parity_sensing.yaml via `trajsim report`.
Also writes the exact Eq. (2) steady <Sy^2> for N = 30..41 at r = 2.5 (docs/figures/figS2.csv).
Outputs docs/figures/fig4b.png, figS2.png, figS2.csv.    python analysis/fig4b_figS2.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from trajsim import exact, runner, scenario
from trajsim.report import write_report

ROOT = Path(__file__).resolve().parents[1]


def main():
    scen = scenario.load(ROOT / "scenarios" / "fig4b_parity_sensing.yaml")
    directory = runner.run(scen, ROOT / "analysis" / "output" / "fig4b", resume=True)
    folder = write_report(directory.path)
    figures = ROOT / "docs" / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "traces.png", figures / "fig4b.png")
    shutil.copy(folder / "histogram.png", figures / "figS2.png")
    r = scen.points[0]["model"]["r"]
    table = pd.DataFrame([{"N": N, "r": r, "Sy2_exact": exact.steady_observables(N, r)["Sy2"],
                           "xi2_exact": exact.steady_observables(N, r)["xi2"]}
                          for N in range(30, 42)])
    table.to_csv(figures / "figS2.csv", index=False, float_format="%.6g")
    print(pd.read_csv(folder / "detection.csv").T.to_string())
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
