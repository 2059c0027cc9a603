"""Inhomogeneous broadening and the even-odd effect (the paper's open question, Sec. VII): the
steady-state contrast <Sy^2>_odd / <Sy^2>_even and the even xi^2 against the width of a
Gaussian broadening cut into M equal classes (``model.broadening``), at r = 2.5.

Even N: the pure dark state of the classes (Sigma psi = 0 = H psi, unique for a symmetric cut),
exact: the product of M/2 two-mode squeezed pairs (``groups.pair_dark_state``: class k with
class M - 1 - k), so <Sy^2> is M/2 times a pair's and xi2 a pair's; checked against the null
space of Sigma^dag Sigma + H^2 (``groups.dark_states``) up to DARK_CHECK_MAX product states.
Odd N (one spin lost from the first class, so N/M - 1 there): the exact steady state
(``groups.steady_state``, sparse LU) and the slowest relaxation rate towards it (the
Liouvillian's gap, shift-invert Arnoldi) up to ODD_EXACT_MAX product states.  Beyond that, for
M = 2 at the widths of ODD_TRAJECTORY_CASES (where the gap is ~0.1 Gamma or more, so a burn-in of
ODD_BURN forgets the start), from trajectories: ODD_TRAJECTORIES of them from all spins down,
each time-averaged over [ODD_BURN, ODD_T_END], the standard error from the spread of those
per-trajectory means; the same estimator runs at N = 15, where the exact state is known.  (At
small widths the gap is ~w^2 and no such average is the steady state: docs/validation.md.)

Wide broadenings decouple the pairs (their dissipators oscillate at different frequencies: the
secular limit, corrections ~ width^-2, tests/test_groups.py): the odd state is then the broken
pair's (n - 1 + n spins at the outer detunings) beside M/2 - 1 dark pairs, and the broken pair's
own state is the secular one (``groups.secular_steady_state``), which gives the contrast of
M = 2, 4 and 8 at N = 40 for width -> infinity (WIDE_SIZES; drawn at WIDE_SHOWN_AT).

Then detection from the S_y record against the width: scenarios/broadened_parity_sensing.yaml
(the quick start, 24 spins in two classes, r = 1.5, one loss at t = 4/Gamma, weak readout
sigma = 1 every 0.25/Gamma; a projective readout would tell the parity from the lattice of
outcomes alone, half-integer for odd N, whatever the state), its threshold and CUSUM at their
operating points and at a false-alarm rate <= FALSE_ALARM_RATE.

Outputs docs/figures/grouped_broadening.png, .csv, _odd_trajectories.csv, _wide.csv and
_detection.csv.
    python analysis/grouped_broadening.py [--replot: from the CSVs]
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from figure_files import FIGURES, save

import trajsim
from trajsim import exact, groups
from trajsim.model import Rates
from trajsim.report import load_run, record_analysis

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "analysis" / "output" / "grouped_broadening"

R = 2.5
#: (N, M): 8 spins in 2, 4 and 8 classes (M = 8: every spin its own), 12 in 2 and 4, 16 in 2,
#: and the paper's N = 40 in 2, 4 and 8 classes; the odd state where it has <= ODD_EXACT_MAX.
SIZES = ((8, 2), (8, 4), (8, 8), (12, 2), (12, 4), (16, 2), (40, 2), (40, 4), (40, 8))
DARK_CHECK_MAX = 20_000
WIDTHS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
ODD_EXACT_MAX = 150
#: The trajectory estimate of odd steady states (module docstring): (N, width) pairs, N even
#: (one spin fewer is run), M = 2.
ODD_TRAJECTORY_CASES = ((16, 10.0), (16, 30.0), (40, 3.0), (40, 10.0), (40, 30.0))
ODD_TRAJECTORIES, ODD_BURN, ODD_T_END = 64, 50.0, 250.0
#: The secular limit (module docstring): (N, M) and the width it is evaluated at.
WIDE_SIZES = ((8, 2), (8, 4), (8, 8), (16, 2), (40, 2), (40, 4), (40, 8))
WIDE_SHOWN_AT = 300.0
WIDE_MARKERS = {2: "*", 4: "P", 8: "X"}
#: Widths of the detection runs, and the false-alarm rate (per 1/Gamma) compared at.
DETECTION_WIDTHS = (0.0, 0.3, 1.0, 3.0, 10.0, 30.0)
FALSE_ALARM_RATE = 0.02


def classes(N: int, M: int, width: float, lost: int = 0) -> tuple[groups.Group, ...]:
    """M equal classes of N/M spins at the quantile means of a Gaussian of this width, less
    ``lost`` spins in the first."""
    deltas = groups.broadening("gaussian", width, M)
    return tuple(groups.Group(N // M - (lost if k == 0 else 0), float(d))
                 for k, d in enumerate(deltas))


def pure_moments(psi: np.ndarray, cl) -> dict:
    """<Sy^2>, xi2 of a pure state of the classes (sparse total-spin operators)."""
    from trajsim.squeezing import moments_from_columns, wineland_xi2
    S = {a: groups.operators(cl, 0.0)[f"S{a}"] for a in "xyz"}
    Spsi = {a: S[a] @ psi for a in "xyz"}
    out = {f"S{a}": float(np.vdot(psi, Spsi[a]).real) for a in "xyz"}
    for a, b in (("x", "x"), ("y", "y"), ("z", "z"), ("x", "y"), ("x", "z"), ("y", "z")):
        out[f"S{a}2" if a == b else f"S{a}S{b}"] = float(np.vdot(Spsi[a], Spsi[b]).real)
    mean, second = moments_from_columns(out)
    return {"Sy2": out["Sy2"], "xi2": float(wineland_xi2(float(sum(g.N for g in cl)), mean,
                                                          second))}


@cache
def dark_pair(n: int) -> dict:
    """<Sy^2>, xi2 of one dark pair of n + n spins (``groups.pair_dark_state``)."""
    return pure_moments(groups.pair_dark_state(n, R), (groups.Group(n, 1.0),
                                                         groups.Group(n, -1.0)))


def even_dark(N: int, M: int, width: float) -> dict:
    """<Sy^2>, xi2 of the even dark state: M/2 identical pairs (module docstring), each with
    <S_y> = 0, so the variances add and the mean spins too; checked against
    ``groups.dark_states`` where that runs."""
    pair = dark_pair(N // M)
    even = {"Sy2": M / 2 * pair["Sy2"], "xi2": pair["xi2"]}
    cl = classes(N, M, width)
    if groups.dimension(cl) <= DARK_CHECK_MAX:
        dark = groups.dark_states(cl, R)
        if dark.shape[1] != 1:
            raise RuntimeError(f"{N}, {M}, {width}: {dark.shape[1]} dark states")
        direct = pure_moments(dark[:, 0], cl)
        if not all(np.isclose(direct[k], even[k], rtol=1e-8, atol=0) for k in even):
            raise RuntimeError(f"{N}, {M}, {width}: the dark state is not the pairs' product")
    return even


def odd_steady(cl) -> tuple[float, float]:
    """(<Sy^2>, slowest relaxation rate) of the odd ensemble's exact steady state, or NaNs
    beyond ODD_EXACT_MAX states.  The rate: minus the real part of the Liouvillian's eigenvalue
    nearest 0 after the steady state's (shift-invert Arnoldi in the sector of even M_z - M_z',
    where the steady state and the states after a loss live)."""
    from scipy.sparse.linalg import eigs
    if groups.dimension(cl) > ODD_EXACT_MAX:
        return np.nan, np.nan
    Sy2 = groups.moments(groups.steady_state(cl, Rates(r=R)), cl)["Sy2"]
    two_m = (2 * groups.operators(cl, 0.0)["Sz"].diagonal().real).round().astype(int)
    kept = np.flatnonzero(((two_m[:, None] - two_m[None, :]) % 4 == 0).ravel())
    L = groups.liouvillian(cl, Rates(r=R))[kept][:, kept].tocsc()
    values = eigs(L, k=3, sigma=1e-3, which="LM", return_eigenvectors=False)
    return Sy2, float(-np.sort(values.real)[-2])


def table() -> pd.DataFrame:
    rows = []
    for N, M in SIZES:
        symmetric = (exact.steady_observables(N, R)["Sy2"],
                     exact.steady_observables(N - 1, R)["Sy2"])
        for width in WIDTHS:
            even = even_dark(N, M, width)
            odd, gap = odd_steady(classes(N, M, width, lost=1))
            rows.append({"N": N, "M": M, "width": width, "width_per_NGamma": width / N,
                         "Sy2_even": even["Sy2"], "xi2_even": even["xi2"], "Sy2_odd": odd,
                         "odd_gap": gap, "contrast": odd / even["Sy2"],
                         "Sy2_even_symmetric": symmetric[0],
                         "contrast_symmetric": symmetric[1] / symmetric[0],
                         "xi2_even_symmetric": exact.steady_observables(N, R)["xi2"]})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def odd_by_trajectories() -> pd.DataFrame:
    """<Sy^2> of the odd (N - 1) ensemble in two classes as the mean of ODD_TRAJECTORIES
    trajectories' time averages over [ODD_BURN, ODD_T_END], with its standard error; beside it
    the exact steady state where ``odd_steady`` has it."""
    rows = []
    for N, width in ODD_TRAJECTORY_CASES:
        cl = classes(N, 2, width, lost=1)
        scenario = {"name": f"odd_{N - 1}_{width:g}", "model": {
            "r": R, "groups": [{"N": g.N, "delta": g.delta} for g in cl]},
            "time": {"t_end": ODD_T_END, "n_samples": int(2 * ODD_T_END) + 1},
            "run": {"trajectories": ODD_TRAJECTORIES, "seed": 7, "store": "trajectories",
                    "unit_size": 1}}
        result = trajsim.run(scenario, OUT / scenario["name"], threads=1, resume=True)
        traj = result.trajectories
        means = traj[traj.t >= ODD_BURN].groupby("trajectory").Sy2.mean()
        rows.append({"N": N - 1, "M": 2, "width": width, "Sy2_odd": means.mean(),
                     "Sy2_odd_sem": means.sem(), "Sy2_odd_exact": odd_steady(cl)[0]})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def wide_limit() -> pd.DataFrame:
    """<Sy^2> of the odd ensemble (one spin lost from class 0) and the contrast in the secular
    limit, width -> infinity: the broken pair (classes 0 and M - 1, n - 1 and n spins, its
    secular steady state) plus M/2 - 1 dark pairs; the even state is M/2 of them
    (``dark_pair``)."""
    rows = []
    for N, M in WIDE_SIZES:
        n = N // M
        broken = (groups.Group(n - 1, 1.0), groups.Group(n, -1.0))
        odd = (groups.moments(groups.secular_steady_state(broken, R), broken)["Sy2"]
               + (M / 2 - 1) * dark_pair(n)["Sy2"])
        even = M / 2 * dark_pair(n)["Sy2"]
        rows.append({"N": N, "M": M, "width": np.inf, "Sy2_even": even, "Sy2_odd": odd,
                     "contrast": odd / even})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def detection_table() -> pd.DataFrame:
    """Threshold and CUSUM on weak records of the broadened quick start, per width: at
    their operating points and their best detection at <= FALSE_ALARM_RATE."""
    sweep = [{"distribution": "gaussian", "width": w, "groups": 2} for w in DETECTION_WIDTHS]
    result = trajsim.run(ROOT / "scenarios" / "broadened_parity_sensing.yaml", OUT / "weak",
                         resume=True, overrides={"sweep.model.broadening": sweep})
    manifest, _, events = load_run(result.path)
    record = record_analysis(manifest, result.measurements, events)
    rows = []
    for (point, detector), roc in record["roc"].groupby(["point", "detector"]):
        chosen = record["summary"][(record["summary"].point == point)
                                   & (record["summary"].detector == detector)].iloc[0]
        quiet = roc[roc.false_alarm_rate <= FALSE_ALARM_RATE]
        rows.append({"width": DETECTION_WIDTHS[point], "detector": detector,
                     "p_detect": chosen.p_detect, "p_detect_low": chosen.p_detect_low,
                     "p_detect_high": chosen.p_detect_high,
                     "false_alarm_rate": 1 / chosen.arl, "latency_median": chosen.latency_median,
                     "p_detect_at_rate": quiet.p_detect.max() if len(quiet) else 0.0,
                     "losses": chosen.losses})
    return pd.DataFrame(rows)


def figure(data: pd.DataFrame, odd: pd.DataFrame, wide: pd.DataFrame,
           detection: pd.DataFrame) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for N, rows in odd[odd.Sy2_odd_exact.isna()].groupby("N"):
        even = data[(data.N == N + 1) & (data.M == 2)].Sy2_even.iloc[0]
        axes[0].errorbar(rows.width, rows.Sy2_odd / even, yerr=rows.Sy2_odd_sem / even,
                         fmt="D", color="k", capsize=2,
                         label=f"N = {N + 1}, M = 2 (odd: trajectories)")
        symmetric = data[(data.N == N + 1) & (data.M == 2)].contrast_symmetric.iloc[0]
        axes[0].axhline(symmetric, color="k", ls=":", lw=0.8)
    for (N, M), rows in wide[wide.N >= 40].groupby(["N", "M"]):
        axes[0].plot(np.full(len(rows), WIDE_SHOWN_AT), rows.contrast, WIDE_MARKERS[M],
                     color="k", ms=8, label=f"N = {N}, M = {M}, width → ∞ (at {WIDE_SHOWN_AT:g})")
    for (N, M), rows in data.groupby(["N", "M"]):
        N, M = int(N), int(M)
        line, = axes[1].plot(rows.width, rows.Sy2_even, "s--", mfc="none",
                             label=f"even, N = {N}, M = {M}")
        if rows.Sy2_odd.notna().any():
            axes[1].plot(rows.width, rows.Sy2_odd, "o-", color=line.get_color(),
                         label=f"odd, N = {N - 1}")
            axes[0].plot(rows.width, rows.contrast, "o-", color=line.get_color(),
                         label=f"N = {N}, M = {M}")
            axes[0].axhline(rows.contrast_symmetric.iloc[0], color=line.get_color(), ls=":",
                            lw=0.8)
    axes[0].set(xscale="log", yscale="log", xlabel="Gaussian width (Γ)",
                ylabel="⟨Sy²⟩_odd / ⟨Sy²⟩_even")
    axes[1].set(xscale="log", yscale="log", xlabel="Gaussian width (Γ)", ylabel="steady ⟨Sy²⟩")
    axes[0].set_ylim(top=3e4)  # room above the data for the legend
    axes[0].legend(fontsize=6, ncol=2, loc="upper center", title="dotted: no broadening",
                   title_fontsize=6)
    axes[1].set_ylim(top=3e3)  # room above the data for the legend
    axes[1].legend(fontsize=6, ncol=3, loc="upper center")
    shown = detection[detection.width > 0]
    for detector, rows in shown.groupby("detector"):
        errors = [rows.p_detect - rows.p_detect_low, rows.p_detect_high - rows.p_detect]
        line = axes[2].errorbar(rows.width, rows.p_detect, yerr=errors, fmt="o-", capsize=2,
                                label=f"{detector} (operating point)")[0]
        axes[2].plot(rows.width, rows.p_detect_at_rate, "s--", color=line.get_color(),
                     mfc="none", label=f"{detector}, ≤ {FALSE_ALARM_RATE:g} false alarms per 1/Γ")
        flat = detection[(detection.width == 0) & (detection.detector == detector)]
        axes[2].axhline(flat.p_detect.iloc[0], color=line.get_color(), ls=":", lw=0.8)
    axes[2].set(xscale="log", ylim=(0, 1.02), xlabel="Gaussian width (Γ), N = 24, M = 2",
                ylabel="detection probability (weak record, σ = 1)")
    axes[2].legend(fontsize=6, title="dotted: width 0", title_fontsize=6)
    save(fig, "grouped_broadening", csv=data, detection=detection, odd_trajectories=odd,
         wide=wide)


def main() -> None:
    if "--replot" in sys.argv:
        data = pd.read_csv(FIGURES / "grouped_broadening.csv")
        odd = pd.read_csv(FIGURES / "grouped_broadening_odd_trajectories.csv")
        wide = pd.read_csv(FIGURES / "grouped_broadening_wide.csv")
        detection = pd.read_csv(FIGURES / "grouped_broadening_detection.csv")
    else:
        data, odd, wide = table(), odd_by_trajectories(), wide_limit()
        detection = detection_table()
    figure(data, odd, wide, detection)


if __name__ == "__main__":
    main()
