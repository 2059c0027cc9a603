"""Fig. S4 (App. E): transition rates between total-spin blocks caused by weak local dephasing
(Eqs. E3-E5, N = 128, Gamma = 1) and the asymptotic decay rate against N for r = 0.2 ... 4, with
the local scaling exponent a of rate ~ 1/N^a.  Writes docs/figures/figS4.png, figS4_rates.csv,
figS4_decay.csv.                                        python analysis/figS4_dephasing_rates.py
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from figure_files import save

from trajsim import dephasing, dicke

R_VALUES = (0.2, 0.5, 1.0, 1.4, 4.0)


def main():
    N = 128
    rows = []
    for r in R_VALUES:
        M = dephasing.transition_rates(N, r)
        j = dicke.two_j_values(N) / 2
        for a in range(1, j.size):
            rows.append({"r": r, "j": j[a], "up_j-1_to_j": M[a, a - 1], "down_j_to_j-1": M[a - 1, a]})
    rates = pd.DataFrame(rows)
    Ns = np.unique(np.round(np.geomspace(4, 1024, 25) / 2).astype(int) * 2)
    curves = []
    for r in R_VALUES:
        rate = np.array([dephasing.asymptotic_decay_rate(int(n), r) for n in Ns])
        exponent = -np.gradient(np.log(rate), np.log(Ns))  # local a in rate ~ 1/N^a
        curves.append(pd.DataFrame({"r": r, "N": Ns, "decay_rate": rate, "exponent_a": exponent}))
    decay = pd.concat(curves, ignore_index=True)

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for k, r in enumerate(R_VALUES):
        d = rates[rates.r == r]
        ax.semilogy(d.j, d["up_j-1_to_j"], "-", color=f"C{k}", label=f"r={r:g}")
        ax.semilogy(d.j, d["down_j_to_j-1"], "--", color=f"C{k}")
        d = decay[decay.r == r]
        ax2.loglog(d.N, d.decay_rate, "o-", ms=3, color=f"C{k}", label=f"r={r:g}")
    ax2.loglog(Ns, 1 / Ns, "k--", label="1/N (r = 0)")
    ax.set(xlabel="j", ylabel="rate (units of εΓ = 2γφ)",
           title=f"(a) N={N}: j−1→j (solid), j→j−1 (dashed)")
    ax2.set(xlabel="N", ylabel="asymptotic decay rate (units of εΓ = 2γφ)", title="(b)")
    ax.legend(fontsize=8)
    ax2.legend(fontsize=8)
    save(fig, "figS4", rates=rates, decay=decay)
    print(decay.pivot(index="N", columns="r", values="decay_rate").to_string())


if __name__ == "__main__":
    main()
