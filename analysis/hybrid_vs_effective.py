"""Where the effective spin model holds: the hybrid implementation of Eq. (9) (trajectories)
against Eq. (11) with Gamma, gamma_coll of Eqs. (12)-(13) (exact), swept from the adiabatic
regime (sqrt(N) g / kappa = 0.05) to beyond it (2), kappa = kappa_sqz + kappa_int = 1.

Paper-like reservoir: kappa_int = 0.02 kappa (kappa_sqz >> kappa_int, Sec. IV), r = 1, so the
cavity needs n_max = 45 photons: N = 8 spins make a Fock ⊗ Dicke space of 414 states, whose
density matrix (171 396 entries) the exact steady-state solver cannot handle.  The protocol,
in units of 1 / (N Gamma) (Gamma of Eq. (12), so the effective model is the same at every
coupling): the spins start in the N = 8 dark state of Eq. (2), the cavity in the reservoir's
squeezed vacuum; one spin is lost at t = T_LOSS; the run ends at T_END.  Read off both models
the same way:

- xi^2 and <Sy^2> of the even state: the average over [T_LOSS - 2, T_LOSS);
- <Sy^2> of the odd state: the average over [T_END - 3, T_END]; the contrast is their ratio;
- tau_loss: when the mean <Sy^2> has covered 1 - 1/e of its way from the even to the odd value.

Writes docs/figures/hybrid_vs_effective.png and hybrid_vs_effective.csv (~10 min on 2 cores).

    python analysis/hybrid_vs_effective.py
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from figure_files import save

import trajsim
from trajsim import cavity, dicke, exact

ROOT = Path(__file__).resolve().parents[1]
N, R, KAPPA_SQZ, KAPPA_INT = 8, 1.0, 0.98, 0.02
RATIOS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)
T_LOSS, T_END, SAMPLES, TRAJECTORIES = 5.0, 17.0, 69, 1000  # times in 1 / (N Gamma)


def scenario(ratio: float) -> dict:
    g = ratio * (KAPPA_SQZ + KAPPA_INT) / np.sqrt(N)
    unit = 1.0 / (N * cavity.squeezed_reservoir_rates(g, KAPPA_SQZ, KAPPA_INT, R).Gamma)
    return {"name": f"hybrid-{ratio:g}",
            "model": {"kind": "hybrid", "N": N, "r": R, "g": g, "kappa_sqz": KAPPA_SQZ,
                      "kappa_int": KAPPA_INT},
            "initial_state": {"kind": "steady"}, "loss": {"times": [T_LOSS * unit]},
            "time": {"t_end": T_END * unit, "n_samples": SAMPLES},
            "run": {"trajectories": TRAJECTORIES, "seed": 3}}


def readout(t: np.ndarray, sy2: np.ndarray, xi2: np.ndarray) -> dict:
    """The even and odd values and tau_loss of <Sy^2>(t) (t in 1 / (N Gamma); sy2 may be
    per trajectory, [trajectory, sample], for the standard errors of the window averages)."""
    sy2 = np.atleast_2d(sy2)
    before, late = (t >= T_LOSS - 2) & (t < T_LOSS), t >= T_END - 3
    even, odd = sy2[:, before].mean(axis=1), sy2[:, late].mean(axis=1)
    mean = sy2.mean(axis=0)
    covered = (mean - even.mean()) / (odd.mean() - even.mean())
    after = np.flatnonzero((t >= T_LOSS) & (covered >= 1 - np.exp(-1)))
    k = after[0] if after.size else None
    tau = (np.interp(1 - np.exp(-1), covered[k - 1:k + 1], t[k - 1:k + 1]) - T_LOSS
           if k is not None and t[k - 1] >= T_LOSS else np.nan)
    sem = (lambda x: x.std(ddof=1) / np.sqrt(x.size)) if sy2.shape[0] > 1 else (lambda x: 0.0)
    return {"xi2_even": xi2[before].mean(), "Sy2_even": even.mean(), "Sy2_even_sem": sem(even),
            "Sy2_odd": odd.mean(), "Sy2_odd_sem": sem(odd), "contrast": odd.mean() / even.mean(),
            "tau_loss_NGamma": tau}


def hybrid_point(ratio: float) -> tuple[dict, pd.DataFrame]:
    out = ROOT / "analysis" / "output" / f"hybrid_{ratio:g}"
    result = trajsim.run(scenario(ratio), out, resume=out.exists())
    unit = scenario(ratio)["time"]["t_end"] / T_END
    summary = result.summary
    t = summary.t.to_numpy() / unit
    traj = result.trajectories.sort_values(["trajectory", "t"])
    per_trajectory = traj.Sy2.to_numpy().reshape(-1, t.size)
    row = readout(t, per_trajectory, summary.xi2.to_numpy())
    row.update(n_max=result.manifest["scenario"]["model"].get("n_max"),
               top_fock_max=result.manifest["points"][0]["top_fock_max"],
               photons_even=summary.n_cav_mean[(t >= T_LOSS - 2) & (t < T_LOSS)].mean())
    return row, summary.assign(t_NGamma=t)


def effective_point(ratio: float) -> tuple[dict, dict]:
    point = trajsim.load_scenario(scenario(ratio)).points[0]
    rates, unit = point.rates(), scenario(ratio)["time"]["t_end"] / T_END
    t = np.linspace(0.0, T_END, SAMPLES)
    psi = dicke.dark_state(N, R)
    ref = exact.evolve(rates, N, N, np.outer(psi, psi), t * unit, loss_times=[T_LOSS * unit])
    return readout(t, ref["Sy2"], ref["xi2"]), ref


def main():
    rows, curves = [], {}
    for ratio in RATIOS:
        ours, summary = hybrid_point(ratio)
        ref, ref_curve = effective_point(ratio)
        rows.append({"sqrtN_g_over_kappa": ratio, **ours,
                     **{f"{k}_eq11": v for k, v in ref.items() if not k.endswith("sem")}})
        curves[ratio] = (summary, ref_curve)
        print(f"sqrt(N) g / kappa = {ratio:g} done", flush=True)
    table = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    x = table.sqrtN_g_over_kappa
    for ax, (name, label) in zip(axes[:3], (("xi2_even", "ξ² before the loss (N = 8)"),
                                            ("contrast", "⟨Sy²⟩ after / before (N = 7 / 8)"),
                                            ("tau_loss_NGamma", "τ_loss · NΓ"))):
        ax.plot(x, table[name], "o-", label="Eq. (9), hybrid trajectories")
        ax.plot(x, table[f"{name}_eq11"], "k--", label="Eq. (11) with Eqs. (12)-(13), exact")
        ax.set(xscale="log", xlabel="√N g / κ", ylabel=label)
        ax.legend(fontsize=7)
    for k, ratio in enumerate((0.1, 0.5, 2.0)):
        summary, ref = curves[ratio]
        axes[3].errorbar(summary.t_NGamma, summary.Sy2_mean, 2 * summary.Sy2_sem, fmt=".",
                         color=f"C{k}", ms=3, label=f"√N g/κ = {ratio:g}")
        axes[3].plot(summary.t_NGamma, ref["Sy2"], "--", color=f"C{k}", lw=1)
    axes[3].set(xlabel="t · NΓ (loss at 5)", ylabel="⟨Sy²⟩ (dashed: Eq. (11))")
    axes[3].legend(fontsize=7)
    save(fig, "hybrid_vs_effective", csv=table)
    print(table.to_string(index=False, float_format="%.4g"))


if __name__ == "__main__":
    main()
