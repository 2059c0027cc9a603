"""Fig. 6(b): Wineland parameter from the mean-field equations (B2)-(B5) for N = 1000 spins at
r = ln(N)/8, ideal, with local dephasing gamma_phi = 0.005 Gamma, and with gamma_rel = 0.001 Gamma
added; the prethermal plateau, the slow relaxation on ~N/gamma_phi and the Eq. (21) bound.
Writes docs/figures/fig6b.png and fig6b.csv.                 python analysis/fig6b_mean_field.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from figure_files import save

from trajsim import meanfield as mf
from trajsim.model import Rates

N = 1000
CURVES = {"ideal": (0.0, 0.0), "γφ = 0.005": (0.005, 0.0), "γφ = 0.005, γrel = 0.001": (0.005, 0.001)}


def main():
    r = np.log(N) / 8
    t = np.concatenate([[0.0], np.geomspace(1e-4, 1e7, 221)])
    table = pd.DataFrame({"t": t})
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, (gamma_phi, gamma_rel) in CURVES.items():
        rates = Rates(Gamma=1.0, r=r, gamma_phi=gamma_phi, gamma_rel=gamma_rel)
        table[label] = mf.xi2(mf.evolve_moments(rates, N, t), N)
        ax.plot(t[1:], table[label][1:], label=label)
    ax.axhline(mf.xi2_dephasing_bound(N), color="grey", ls="-.", lw=0.8, label="Eq. (21)")
    ax.set(xscale="log", yscale="log", xlabel="Γt", ylabel="ξ²",
           title=f"Fig. 6(b): mean field, N = {N}, r = ln(N)/8")
    ax.legend(fontsize=8)
    save(fig, "fig6b", csv=table)
    print(table.iloc[::20].to_string(index=False))


if __name__ == "__main__":
    main()
