"""Where the effective spin model holds: the hybrid implementation of Eq. (9) (trajectories)
against Eq. (11) with Gamma, gamma_coll of Eqs. (12)-(13) (exact), swept from the adiabatic
regime (sqrt(N) g / kappa = 0.05) to beyond it (2), kappa = kappa_sqz + kappa_int = 1.

Paper-like reservoir: kappa_int = 0.02 kappa (kappa_sqz >> kappa_int, Sec. IV), r = 1, so the
cavity needs n_max = 45 photons: N = 8 spins make a Fock ⊗ Dicke space of 414 states, whose
density matrix (171 396 entries) the exact steady-state solver cannot handle.  The protocol, in
units u = max(1 / (N Gamma), 1 / kappa) (Gamma of Eq. (12): the effective model's time scale,
but never shorter than the cavity's): the spins start in the N = 8 dark state of Eq. (2), the
cavity in the reservoir's squeezed vacuum; one spin is lost at t = T_LOSS; the run ends at
T_END.  Read off both models the same way:

- xi^2 and <Sy^2> before the loss: the averages over [T_LOSS - 2, T_LOSS);
- <Sy^2> after it: the average over [T_END - 3, T_END]; the contrast is after / before;
- tau_loss: when the mean <Sy^2> has covered 1 - 1/e of its way from before to after, in units
  of 1 / (N Gamma) and of 1 / kappa.

Writes docs/figures/hybrid_vs_effective.png and hybrid_vs_effective.csv (~4 min on 2 cores).

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


def coupling(ratio: float) -> float:
    return ratio * (KAPPA_SQZ + KAPPA_INT) / np.sqrt(N)


def unit_of(ratio: float) -> float:
    """u = max(1 / (N Gamma), 1 / kappa)."""
    rates = cavity.squeezed_reservoir_rates(coupling(ratio), KAPPA_SQZ, KAPPA_INT, R)
    return max(1.0 / (N * rates.Gamma), 1.0 / (KAPPA_SQZ + KAPPA_INT))


def scenario(ratio: float) -> dict:
    g, unit = coupling(ratio), unit_of(ratio)
    return {"name": f"hybrid-{ratio:g}",
            "model": {"kind": "hybrid", "N": N, "r": R, "g": g, "kappa_sqz": KAPPA_SQZ,
                      "kappa_int": KAPPA_INT},
            "initial_state": {"kind": "steady"}, "loss": {"times": [T_LOSS * unit]},
            "time": {"t_end": T_END * unit, "n_samples": SAMPLES},
            "run": {"trajectories": TRAJECTORIES, "seed": 3}}


def readout(t: np.ndarray, sy2: np.ndarray, xi2: np.ndarray) -> dict:
    """The values before and after the loss and tau_loss (in units u) of <Sy^2>(t) (t in u;
    sy2 may be per trajectory, [trajectory, sample], for the standard errors of the window
    averages)."""
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
    return {"xi2_before": xi2[before].mean(), "Sy2_before": even.mean(),
            "Sy2_before_sem": sem(even), "Sy2_after": odd.mean(), "Sy2_after_sem": sem(odd),
            "contrast": odd.mean() / even.mean(), "tau_loss": tau}


def hybrid_point(ratio: float) -> tuple[dict, pd.DataFrame]:
    out = ROOT / "analysis" / "output" / f"hybrid_{ratio:g}"
    result = trajsim.run(scenario(ratio), out, resume=out.exists())
    unit = unit_of(ratio)
    summary = result.summary
    t = summary.t.to_numpy() / unit
    traj = result.trajectories.sort_values(["trajectory", "t"])
    per_trajectory = traj.Sy2.to_numpy().reshape(-1, t.size)
    row = readout(t, per_trajectory, summary.xi2.to_numpy())
    row.update(n_max=trajsim.load_scenario(scenario(ratio)).points[0]["model"]["n_max"],
               top_fock_max=result.manifest["points"][0]["top_fock_max"],
               photons_before=summary.n_cav_mean[(t >= T_LOSS - 2) & (t < T_LOSS)].mean())
    return row, summary.assign(t_unit=t)


def effective_point(ratio: float) -> tuple[dict, dict]:
    point = trajsim.load_scenario(scenario(ratio)).points[0]
    rates, unit = point.rates(), unit_of(ratio)
    t = np.linspace(0.0, T_END, SAMPLES)
    psi = dicke.dark_state(N, R)
    ref = exact.evolve(rates, N, N, np.outer(psi, psi), t * unit, loss_times=[T_LOSS * unit])
    return readout(t, ref["Sy2"], ref["xi2"]), ref


def main():
    rows, curves = [], {}
    for ratio in RATIOS:
        ours, summary = hybrid_point(ratio)
        ref, ref_curve = effective_point(ratio)
        rates = trajsim.load_scenario(scenario(ratio)).points[0].rates()
        unit = unit_of(ratio)
        row = {"sqrtN_g_over_kappa": ratio, "unit_NGamma": unit * N * rates.Gamma,
               "unit_kappa": unit * (KAPPA_SQZ + KAPPA_INT), **ours,
               **{f"{k}_eq11": v for k, v in ref.items() if not k.endswith("sem")}}
        for suffix in ("", "_eq11"):
            row[f"tau_loss_NGamma{suffix}"] = row[f"tau_loss{suffix}"] * row["unit_NGamma"]
            row[f"tau_loss_kappa{suffix}"] = row.pop(f"tau_loss{suffix}") * row["unit_kappa"]
        rows.append(row)
        curves[ratio] = (summary, ref_curve)
        print(f"sqrt(N) g / kappa = {ratio:g} done", flush=True)
    table = pd.DataFrame(rows)
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.9))
    x = table.sqrtN_g_over_kappa
    for ax, (name, label) in zip(axes[:3], (("xi2_before", "ξ² before the loss (N = 8)"),
                                            ("contrast", "⟨Sy²⟩ after / before (N = 7 / 8)"),
                                            ("tau_loss_kappa", "τ_loss · κ"))):
        ax.plot(x, table[name], "o-", label="Eq. (9), hybrid trajectories")
        ax.plot(x, table[f"{name}_eq11"], "k--", label="Eq. (11) with Eqs. (12)-(13), exact")
        ax.set(xscale="log", xlabel="√N g / κ", ylabel=label,
               yscale="log" if "tau" in name else "linear")
        ax.legend(fontsize=7)
    for k, ratio in enumerate((0.1, 0.5, 2.0)):
        summary, ref = curves[ratio]
        axes[3].errorbar(summary.t_unit, summary.Sy2_mean, 2 * summary.Sy2_sem, fmt=".",
                         color=f"C{k}", ms=3, label=f"√N g/κ = {ratio:g}")
        axes[3].plot(summary.t_unit, ref["Sy2"], "--", color=f"C{k}", lw=1)
    axes[3].set(xlabel="t / max(1/NΓ, 1/κ) (loss at 5)", ylabel="⟨Sy²⟩ (dashed: Eq. (11))")
    axes[3].legend(fontsize=7)
    save(fig, "hybrid_vs_effective", csv=table)
    print(table.to_string(index=False, float_format="%.4g"))


if __name__ == "__main__":
    main()
