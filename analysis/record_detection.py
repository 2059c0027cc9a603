"""Parity sensing from a measurement record at the Fig. 4(b) parameters (N = 40, r = 2.5,
0.002 losses per spin per 1/Gamma): the record detectors (y^2 threshold, CUSUM, the exact
Bayesian filter) and the non-physical conditional-<Sy^2> reference, for projective and weak
(sigma = 0.5, 1, 2) S_y readouts every 0.5/Gamma and 2/Gamma; each detector's best detection
along its ROC at a false-alarm rate of at most 0.01 Gamma; and the exact single-shot parity
discrimination over N, r and the readout resolution sigma.  Outputs
docs/figures/record_detection.png and .csv, record_detection_at_false_alarm_rate.csv,
record_detection_single_shot.csv.   python analysis/record_detection.py [--replot: from the CSVs]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from figure_files import FIGURES, save

import trajsim
from trajsim import discrimination
from trajsim.report import analyse, load_run, record_analysis

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "analysis" / "output" / "record_detection"


#: (scenario, S_y resolution sigma or None for the scenario's): the readouts compared.
READOUTS = [("parity_sensing_projective", None), ("parity_sensing_weak", 0.5),
            ("parity_sensing_weak", 1.0), ("parity_sensing_weak", 2.0)]
#: The false-alarm rate (per 1/Gamma) at which the detectors are compared along their ROC.
FALSE_ALARM_RATE = 0.01


def detection_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(each detector at its operating point, the best detection of each detector along its
    ROC at a false-alarm rate <= FALSE_ALARM_RATE), over READOUTS and periods 0.5, 2."""
    rows, at_rate = [], []
    for name, sigma in READOUTS:
        for period in (0.5, 2.0):
            overrides = {"measurement.period": period}
            folder = f"{name}_{period:g}"
            if sigma is not None:
                overrides["measurement.sigma"] = sigma
                folder += "" if sigma == 1.0 else f"_sigma{sigma:g}"
            result = trajsim.run(ROOT / "scenarios" / f"{name}.yaml", OUT / folder,
                                 resume=True, overrides=overrides)
            manifest, traj, events = load_run(result.path)
            record = record_analysis(manifest, result.measurements, events)
            reference = analyse(manifest, traj, events)["summary"].assign(
                detector="conditional <Sy^2> (reference)", parameter=lambda d: d.threshold,
                arl=lambda d: 1 / d.rate, arl_low=lambda d: 1 / d.rate_high,
                arl_high=lambda d: 1 / d.rate_low, false_alarms=lambda d: d.false_flips)
            readout = {"readout": manifest["scenario"]["measurement"]["kind"],
                       "sigma": manifest["scenario"]["measurement"]["sigma"], "period": period}
            for table in (record["summary"], reference):
                for _, row in table.iterrows():
                    rows.append({**readout, **{k: row[k] for k in (
                        "detector", "parameter", "losses", "detected", "p_detect",
                        "p_detect_low", "p_detect_high", "latency_median",
                        "latency_median_low", "latency_median_high",
                        "false_alarms", "arl", "arl_low", "arl_high")}})
            for detector, roc in record["roc"].groupby("detector"):
                quiet = roc[roc.false_alarm_rate <= FALSE_ALARM_RATE]
                best = quiet.loc[quiet.p_detect.idxmax()] if len(quiet) else None
                at_rate.append({**readout, "detector": detector,
                                "p_detect": best.p_detect if best is not None else 0.0,
                                "parameter": best.parameter if best is not None else None,
                                "false_alarms": best.false_alarms if best is not None else None,
                                "losses": roc.losses.iloc[0]})
    return pd.DataFrame(rows), pd.DataFrame(at_rate)


def single_shot_table() -> pd.DataFrame:
    rows = []
    for N in (40, 100, 200):
        for r in (1.5, 2.5):
            for sigma in (0.0, 0.5, 1.0, 2.0):
                try:
                    n99 = discrimination.outcomes_for_confidence(N, r, sigma)
                except ValueError:
                    n99 = None  # more than 2000
                rows.append({"N": N, "r": r, "sigma": sigma,
                             "error_one_outcome": discrimination.single_shot_error(N, r, sigma),
                             "outcomes_for_99pct": n99})
    return pd.DataFrame(rows)


#: Detectors in the figure's order, with their tick labels.
TICKS = {"threshold": "threshold", "cusum": "CUSUM", "bayes": "Bayesian filter",
         "conditional <Sy^2> (reference)": "conditional ⟨Sy²⟩\n(not measurable)"}


def plot(table: pd.DataFrame, at_rate: pd.DataFrame):
    """Left: each detector at its operating point (its false alarms differ: see the table);
    right: each detector's best detection at a false-alarm rate <= FALSE_ALARM_RATE."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    order = {name: i for i, name in enumerate(TICKS)}
    for (readout, sigma, period), group in table.groupby(["readout", "sigma", "period"],
                                                         dropna=False):
        label = f"{readout}{'' if readout == 'projective' else f' σ = {sigma:g}'}, " \
                f"every {period:g}/Γ"
        group = group.sort_values("detector", key=lambda d: d.map(order))
        line = left.errorbar(group.detector.map(order), group.p_detect,
                             yerr=[group.p_detect - group.p_detect_low,
                                   group.p_detect_high - group.p_detect], fmt="o", label=label)
        same = at_rate[(at_rate.readout == readout) & (at_rate.period == period)
                       & ((at_rate.sigma == sigma) | (at_rate.sigma.isna() & pd.isna(sigma)))]
        same = same.sort_values("detector", key=lambda d: d.map(order))
        right.plot(same.detector.map(order), same.p_detect, "o-", color=line[0].get_color())
    left.set(ylabel="detection probability within 3/Γ", ylim=(0, 1.02),
             title="at each detector's operating point")
    right.set(title=f"best along the ROC at ≤ {FALSE_ALARM_RATE:g} false alarms per 1/Γ")
    left.set_xticks(range(4), TICKS.values(), fontsize=8)
    right.set_xticks(range(3), list(TICKS.values())[:3], fontsize=8)
    right.legend(*left.get_legend_handles_labels(), loc="center right", ncol=2, fontsize=7)
    fig.suptitle("Fig. 4(b) parameters (N = 40, r = 2.5): loss detection from the record")
    return fig


def main():
    if sys.argv[1:] == ["--replot"]:  # the figure again from the tables in docs/figures
        table = pd.read_csv(FIGURES / "record_detection.csv")
        at_rate = pd.read_csv(FIGURES / "record_detection_at_false_alarm_rate.csv")
        shots = pd.read_csv(FIGURES / "record_detection_single_shot.csv")
    else:
        table, at_rate = detection_tables()
        shots = single_shot_table()
    save(plot(table, at_rate), "record_detection", csv=table, single_shot=shots,
         at_false_alarm_rate=at_rate)
    print(table.round(4).to_string(index=False))
    print(at_rate.round(4).to_string(index=False))
    print(shots.round(4).to_string(index=False))


if __name__ == "__main__":
    main()
