"""``trajsim report DIR``: parity-detection tables and figures for a finished run directory.

Reads the output contract (manifest, trajectories, events), runs the threshold detector of
``trajsim.detection`` on the ideal conditional <Sy^2> signal, and writes DIR/report/:
report.md, report.html (figures embedded), detection.csv, losses.csv, roc.csv and PNG figures:
traces with the loss events marked (Fig. 4(b) style), <Sy^2> histograms for true even vs odd N
(Fig. S2 style), the ROC over thresholds, and the latency distribution.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
import numpy as np
import pandas as pd

from . import detection, detectors, discrimination, exact
from .detection import Detector
from .engines import engine_for, readout_shots
from .errors import TrajsimError, printable
from .hybrid import WARN_TOP_WEIGHT
from .point import shown
from .runner import unit_identities
from .scenario import resolve
from .store import RunDirectory, RunDirectoryError, write_owned


def auto_threshold(N: int, r: float) -> float:
    """Geometric mean of the exact Eq. (2) steady <Sy^2> for N and N - 1 spins."""
    return float(np.sqrt(exact.steady_observables(N, r)["Sy2"]
                         * exact.steady_observables(N - 1, r)["Sy2"]))


def load_finished(path) -> tuple[dict, RunDirectory]:
    """Manifest and directory of a finished run whose every unit is whole, or a one-line
    RunDirectoryError."""
    directory = RunDirectory(path)
    manifest = directory.read_manifest()
    if manifest.get("status") != "done":
        raise RunDirectoryError(f"{path}: the run is not finished; complete it with "
                                "'trajsim run ... --resume' first")
    try:
        scenario = resolve(manifest["scenario"], manifest["scenario"].get("name", "scenario"))
    except TrajsimError as err:
        raise RunDirectoryError(f"{directory.manifest_path}: damaged scenario ({err})") from None
    keep = manifest["scenario"].get("run", {}).get("store") == "trajectories"
    directory.check_finished(
        manifest, unit_identities(scenario),
        [engine_for(point).tables(point, keep) for point in scenario.points])
    return manifest, directory


def load_run(path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Manifest, trajectories and events of a finished run, or a one-line RunDirectoryError."""
    manifest, directory = load_finished(path)
    if manifest["scenario"].get("run", {}).get("store") != "trajectories":
        raise RunDirectoryError(f"{path}: the detection statistics need per-trajectory data; "
                                "run with run.store: trajectories")
    points = _points(manifest)
    shots = any(readout_shots(point) for point in points)
    traj = directory.read_table("trajectories", columns=["point", "trajectory", "t", "N", "Sy2"]
                                + ["Sy2_shots"] * shots)
    events = directory.read_table("events")
    return manifest, traj.sort_values(["point", "trajectory", "t"], kind="stable"), events


def detector_for(point) -> Detector:
    """The point's detection settings (``Point.detection``); threshold ``auto`` resolved."""
    settings = point.detection()
    threshold = settings["threshold"]
    if threshold == "auto":
        threshold = auto_threshold(point["model"]["N"], point["model"]["r"])
    return Detector(threshold=float(threshold), hold=float(settings["hold"]),
                    smooth=float(settings["smooth"]), window=float(settings["window"]),
                    settle=float(settings["settle"]))


def _gap(point: dict) -> float:
    """Exact Liouvillian gap of Eq. (2) in j = N/2 (the relaxation rate after a loss) for N - 1
    spins, the first loss's target, in the sector of even coherences (exact.even_coherences:
    the steady state and so the state after a loss live there); NaN beyond N = 300 (too costly
    here), with local terms, for classes of spins (model.groups), or without the Eq. (2)
    reservoir (Gamma = 0)."""
    m = point["model"]
    if m["N"] > 300 or m["gamma_phi"] or m["gamma_rel"] or m["N"] < 3 or not m["Gamma"] > 0 \
            or "groups" in m:
        return np.nan
    return exact.liouvillian_gap(m["N"] - 1, m["r"], m["Gamma"], even_only=True)


def _swept(manifest: dict, points: list) -> list[str]:
    """The swept names: each swept key, or for a swept mapping (model.broadening) the entries
    of it that differ between the points ('model.broadening.width')."""
    names = []
    for key in manifest["scenario"]["sweep"]:
        section, name = key.split(".")
        values = [p[section][name] for p in points]
        if all(isinstance(v, Mapping) for v in values):
            varying = [k for k in values[0] if len({shown(v.get(k)) for v in values}) > 1]
            if varying:
                names += [f"{key}.{k}" for k in varying]
                continue
        names.append(key)
    return names


def _value(point: dict, name: str):
    """The value of a swept name (``_swept``) at a point."""
    section, key, *inner = name.split(".")
    value = point[section][key]
    return value[inner[0]] if inner else value


def _labels(manifest: dict, points: list) -> list[str]:
    """Per point: 'model.N=40, model.r=2.5' (the swept names and values: a broadening sweep's
    'model.broadening.width=0.3'), or 'point 0' without a sweep."""
    if not manifest["scenario"]["sweep"]:
        return [f"point {p}" for p in range(len(points))]
    names = _swept(manifest, points)
    return [", ".join(f"{n}={shown(_value(point, n))}" for n in names) for point in points]


def _points(manifest: dict) -> list[dict]:
    return resolve(manifest["scenario"], manifest["scenario"].get("name", "scenario")).points


def analyse(manifest, traj, events):
    """Per point: classified samples, per-loss detections, flip statistics, summary, ROC."""
    points = _points(manifest)
    labels = _labels(manifest, points)
    signal = traj["Sy2_shots" if "Sy2_shots" in traj else "Sy2"]
    initial = {p: point["model"]["N"] for p, point in enumerate(points)}
    timeline = detection.parity_timeline(events, initial, traj)
    out = {"classified": [], "losses": [], "summary": [], "roc": []}
    for p, point in enumerate(points):
        mask = (timeline.point == p).to_numpy()
        det = detector_for(point)
        classified = detection.classify(timeline[mask], signal[mask], det)
        found = detection.loss_detections(classified, events[events.point == p], det)
        flips = detection.false_flips(classified, events[events.point == p], det)
        summary = detection.summarize(found, flips).assign(
            threshold=det.threshold, hold=det.hold, smooth=det.smooth, window=det.window,
            gap=_gap(point), label=labels[p])
        out["classified"].append(classified)
        out["losses"].append(found)
        out["summary"].append(summary)
        for factor in np.geomspace(0.1, 10, 9):
            trial = Detector(det.threshold * factor, det.hold, det.smooth, det.window, det.settle)
            c = detection.classify(timeline[mask], signal[mask], trial)
            s = detection.summarize(detection.loss_detections(c, events[events.point == p], trial),
                                    detection.false_flips(c, events[events.point == p], trial))
            out["roc"].append(s.assign(threshold=trial.threshold))
    return {key: pd.concat(frames, ignore_index=True) for key, frames in out.items()}


def _figures(results, events, files: dict, manifest: dict) -> dict[str, str]:
    """The conditional reference: traces, histograms by parity, ROC, sweep and latency."""
    label, unit = _time_unit(manifest)
    classified = results["classified"]
    figures = {}
    fig, ax = _figure(figsize=(8, 3.6))
    for (p, k), track in list(classified.groupby(["point", "trajectory"]))[:3]:
        line, = ax.plot(track.t, track.signal.clip(lower=1e-6), lw=0.7, label=f"point {p}, traj {k}")
        lost = events[(events.point == p) & (events.trajectory == k) & (events.kind == "loss")]
        ax.plot(lost.t, np.full(len(lost), max(track.signal.max(), 1e-6) * 1.5), "v",
                color=line.get_color())
    if results["summary"].threshold.iloc[0] > 0:  # log axis
        ax.axhline(results["summary"].threshold.iloc[0], color="k", ls="--", lw=0.8,
                   label="threshold")
    ax.set(yscale="log", xlabel=label, ylabel="⟨Sy²⟩ (conditional)")
    ax.legend(fontsize=7)
    figures["traces.png"] = "Conditional ⟨Sy²⟩ of three trajectories; triangles mark spin losses."
    _save(fig, files, "traces.png")

    log_signal = np.log10(classified.signal.clip(lower=1e-8))
    threshold = results["summary"].threshold.iloc[0]
    if log_signal.max() - log_signal.min() > 1e-3:  # a spread a histogram can show
        fig, ax = _figure(figsize=(6, 3.6))
        bins = np.linspace(log_signal.min(), log_signal.max(), 60)
        for odd, name in ((False, "true N even"), (True, "true N odd")):
            values = log_signal[classified.odd_true == odd]
            if len(values):
                ax.hist(values, bins=bins, alpha=0.6, density=True, label=name)
        if threshold > 0:
            ax.axvline(np.log10(threshold), color="k", ls="--", lw=0.8)
        ax.set(xlabel="log10 ⟨Sy²⟩", ylabel="density per parity")
        ax.legend()
        figures["histogram.png"] = ("Distribution of the conditional ⟨Sy²⟩ at all samples, by "
                                    "true parity.")
        _save(fig, files, "histogram.png")

    fig, ax = _figure(figsize=(5, 4))
    for p, roc in results["roc"].groupby("point"):
        _roc_line(ax, roc.rate, roc.p_detect, f"point {p}")
    chosen = results["summary"]
    ax.plot(chosen.rate, chosen.p_detect, "k*", ms=12, label="chosen threshold")
    ax.set(xlabel=f"false parity flips per {unit}", ylabel="detection probability",
           ylim=(0, 1.02))
    ax.set_xlim(left=0)
    ax.legend(fontsize=7)
    figures["roc.png"] = ("ROC: detection probability vs false-flip rate over thresholds "
                          "×0.1…×10 (dots); line, the best detection at or below each rate.")
    _save(fig, files, "roc.png")

    if len(results["summary"]) > 1:
        fig, (ax1, ax2) = _figure(1, 2, figsize=(9, 3.6))
        summary = results["summary"]
        x = _sweep_axis(ax1, manifest, summary.point)
        _sweep_axis(ax2, manifest, summary.point)
        ax1.errorbar(x, summary.p_detect, yerr=[summary.p_detect - summary.p_detect_low,
                                                summary.p_detect_high - summary.p_detect], fmt="o")
        ax1.set(ylabel="detection probability", ylim=(0, 1.02))
        ax2.errorbar(x, summary.rate, yerr=[summary.rate - summary.rate_low,
                                            summary.rate_high - summary.rate], fmt="o")
        ax2.set(ylabel=f"false flips per {unit}")
        figures["sweep.png"] = "Detection probability and false-flip rate per sweep point."
        _save(fig, files, "sweep.png")

    return figures


def _markdown(df: pd.DataFrame) -> str:
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in df.values]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _figure(*grid, **options):
    """(figure, axes) like ``pyplot.subplots``, but a plain ``Figure`` that pyplot does not
    keep: nothing leaks, whatever happens before it is saved."""
    fig = Figure(**{"figsize": options.pop("figsize", None)})
    return fig, fig.subplots(*grid, **options)


def _save(fig, files: dict, name: str, outside: bool = False) -> None:
    """The figure as PNG bytes in files[name] (``outside``: laid out by the caller before it
    placed a legend outside the axes, and grown to hold it)."""
    if not outside:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight" if outside else None)
    files[name] = buffer.getvalue()


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.6g").encode()


def record_analysis(manifest: dict, measurements: pd.DataFrame, events: pd.DataFrame) -> dict:
    """The record detectors (``trajsim.detectors``) on every point: summary and ROC tables, and
    per point (label, records, declarations) for its trace figure."""
    summaries, rocs, examples = [], [], []
    points = _points(manifest)
    for p, (point, label) in enumerate(zip(points, _labels(manifest, points))):
        summary, roc, recs, chosen = detectors.analyse_point(
            measurements[measurements.point == p], events[events.point == p], point,
            point.detection())
        summaries.append(summary.assign(point=p, label=label, gap=_gap(point),
                                        **_single_shot(point)))
        rocs.append(roc.assign(point=p, label=label))
        examples.append((label, recs[:3], {k: v[:3] for k, v in chosen.items()}))
    return {"summary": pd.concat(summaries, ignore_index=True),
            "roc": pd.concat(rocs, ignore_index=True), "examples": examples}


BANDWIDTH_TEXT = (
    "The largest swept spin-loss rate per spin (and N·rate, losses per 1/Γ) at which each record "
    "detector still detects at least 90 % of the losses, with the Wilson interval of that "
    "detection probability, and the next swept rate (where it fails); compare with the "
    "Liouvillian gap after a loss.")


def measured_bandwidth(summary: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Per detector: the largest swept loss rate detected with >= 90 % probability."""
    points = _points(manifest)
    rates = {p: point["loss"]["rate_per_spin"] for p, point in enumerate(points)}
    N = {p: point["model"]["N"] for p, point in enumerate(points)}
    rows = []
    for detector, group in summary.assign(rate=summary.point.map(rates)).groupby("detector"):
        group = group.sort_values("rate")
        passing = group[group.p_detect >= 0.9]
        best = passing.iloc[-1] if len(passing) else None
        failing = group[group.rate > (best.rate if best is not None else -np.inf)]
        rows.append({"detector": detector,
                     "bandwidth_rate_per_spin": best.rate if best is not None else np.nan,
                     "losses_per_unit_time": best.rate * N[best.point] if best is not None
                     else np.nan,
                     "p_detect": best.p_detect if best is not None else np.nan,
                     "p_detect_low": best.p_detect_low if best is not None else np.nan,
                     "p_detect_high": best.p_detect_high if best is not None else np.nan,
                     "next_rate": failing.rate.iloc[0] if len(failing) else np.nan,
                     "next_p_detect": failing.p_detect.iloc[0] if len(failing) else np.nan,
                     "gap_after_loss": group.gap.iloc[0]})
    return pd.DataFrame(rows)


def _single_shot(point: dict) -> dict:
    """Exact single-outcome discrimination of the N and N - 1 steady states at the point's
    resolution: the error of one outcome and the independent outcomes for 99 % confidence."""
    N, r = point["model"]["N"], point["model"]["r"]
    sigma = float(point["measurement"]["sigma"] or 0.0)
    if N < 2 or point["model"]["Gamma"] == 0 or "groups" in point["model"]:
        return {"single_shot_error": np.nan, "outcomes_for_99pct": np.nan}
    try:
        needed = discrimination.outcomes_for_confidence(N, r, sigma)
    except ValueError:  # more than discrimination's n_max
        needed = np.inf
    return {"single_shot_error": discrimination.single_shot_error(N, r, sigma),
            "outcomes_for_99pct": needed}


def _sweep_axis(ax, manifest: dict, values: pd.Series) -> pd.Series:
    """x positions of sweep points: the swept value for a single numeric axis (log scale for
    a positive rate), else the point index; sets the axis label."""
    points = _points(manifest)
    names = _swept(manifest, points)
    if len(names) == 1:
        x = values.map(lambda p: _value(points[p], names[0]))
        if pd.api.types.is_numeric_dtype(x):
            key = names[0].split(".")[-1]
            if (x > 0).all() and ("rate" in key or "gamma" in key or x.max() > 20 * x.min()):
                ax.set_xscale("log")  # ticks at the swept values: the minor ones' labels,
                ax.set_xticks(np.unique(x.to_numpy(float)))  # 2e-2 3e-2 ..., ran together
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(names[0])
            return x
    ax.set_xlabel("sweep point (see the table)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return values


def _record_sweep_figure(summary: pd.DataFrame, manifest: dict, files: dict,
                         unit: str) -> dict[str, str]:
    """Detection probability, median latency and false alarms of each record detector along
    the sweep."""
    fig, axes = _figure(1, 3, figsize=(12, 3.8))
    for detector, group in summary.groupby("detector"):
        x = {ax: _sweep_axis(ax, manifest, group.point) for ax in axes}
        axes[0].errorbar(x[axes[0]], group.p_detect,
                         yerr=[group.p_detect - group.p_detect_low,
                               group.p_detect_high - group.p_detect], fmt="o-", label=detector)
        axes[1].errorbar(x[axes[1]], group.latency_median,
                         yerr=[group.latency_median - group.latency_median_low,
                               group.latency_median_high - group.latency_median], fmt="o-",
                         label=detector)
        axes[2].plot(x[axes[2]], 100 / group.arl, "o-", label=detector)
    axes[0].set(ylabel="detection probability", ylim=(0, 1.02))
    axes[1].set(ylabel=f"median latency ({unit})")
    axes[2].set(ylabel=f"false alarms per {_per(100, unit)}")
    axes[2].set_ylim(bottom=0)
    axes[0].legend(fontsize=7)
    _save(fig, files, "record_sweep.png")
    return {"record_sweep.png": "Detection probability (Wilson interval), median latency "
                                "(bootstrap interval) and false-alarm rate of the record "
                                "detectors per sweep point."}


def _record_traces(label: str, recs: list, chosen: dict, files: dict, name: str,
                   time_label: str) -> str:
    """Three records of one point: squared outcomes, the true parity and the CUSUM declaration."""
    fig, axes = _figure(len(recs), 1, figsize=(8, 2 * len(recs)), sharex=True,
                             squeeze=False)
    for ax, rec, declared in zip(axes[:, 0], recs, chosen["cusum"], strict=True):
        ax.plot(rec.times, rec.signal, ".", ms=3, color="0.4", label="outcome y²")
        truth = rec.start_odd ^ (np.searchsorted(rec.losses, rec.times, side="right") % 2 == 1)
        top = max(rec.signal.max(), 1.0)
        ax.step(rec.times, np.where(truth, top, 0), where="post", color="tab:red", lw=1,
                label="true parity (odd up)")
        ax.step(rec.times, np.where(declared, 0.8 * top, 0.05 * top), where="post",
                color="tab:blue", lw=1, label="CUSUM declaration")
        ax.set(ylabel="y²")
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set(xlabel=time_label)
    _save(fig, files, name)
    return (f"Measurement records of {len(recs)} trajectories ({label}): squared outcomes, the "
            "true parity and the CUSUM declaration.")


def roc_envelope(alarms, detected) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alarm rates sorted, detection there, the ROC: the best detection at or below each
    false-alarm rate; a setting beaten by one with fewer false alarms is not on it)."""
    x, y = np.asarray(alarms, float), np.asarray(detected, float)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.lexsort((-y[keep], x[keep]))
    x, y = x[keep][order], y[keep][order]
    return x, y, np.maximum.accumulate(y) if y.size else y


def _roc_line(ax, alarms: pd.Series, detected: pd.Series, label: str) -> None:
    """Every setting as a dot, and the ROC (``roc_envelope``) through them."""
    x, y, envelope = roc_envelope(alarms, detected)
    dots, = ax.plot(x, y, "o", ms=3, alpha=0.5)
    ax.step(x, envelope, where="post", color=dots.get_color(), label=label)


def _record_figures(record: dict, files: dict, unit: str) -> dict[str, str]:
    """The ROC of each record detector: detection against false alarms per 100 time units,
    sorted along the false-alarm axis, operating points starred."""
    fig, ax = _figure(figsize=(5.5, 4))
    for (point, kind), roc in record["roc"].groupby(["label", "detector"]):
        _roc_line(ax, 100 * roc.false_alarm_rate, roc.p_detect, f"{kind}, {point}")
    chosen = record["summary"]
    ax.plot(100 / chosen.arl, chosen.p_detect, "k*", ms=11, label="operating points")
    ax.set(xlabel=f"false alarms per {_per(100, unit)}", ylabel="detection probability",
           ylim=(0, 1.02))
    ax.set_xlim(left=0)
    ax.legend(fontsize=6)
    _save(fig, files, "record_roc.png")
    return {"record_roc.png": "ROC of the record detectors over their parameter (threshold θ "
                              "×0.1…×10, CUSUM h 0.5…12): dots, each setting; line, the best "
                              "detection at or below each false-alarm rate; stars: the operating "
                              "points of the table."}


RECORD_TEXT = (
    "Detectors that read only the measurement record (S_y outcomes applied with their "
    "back-action, `measurements.parquet`): a threshold on y² held for consecutive outcomes, "
    "Page's CUSUM on the exact log-likelihood ratio of the even and odd steady-state outcome "
    "laws, and (for j = N/2 models without local dissipation) the exact Bayesian parity "
    "filter, the best any detector can do with the record (parameter: the posterior level to "
    "declare). "
    "The single-outcome error and the outcomes for 99 % are the exact discrimination of the N "
    "and N − 1 steady states by one outcome, and the independent outcomes needed for 99 % "
    "confidence, at this readout's resolution; every column is in record_detection.csv. A loss counts as detected only if the declaration changes to the new parity at a "
    "post-loss outcome within `window` and before the next loss; false alarms are changes away "
    "from the truth in quiet time, reported as the average run length (ARL, in 1/Γ). "
    "Intervals: Wilson (detection), bootstrap (median latency), exact Poisson (ARL).")
REFERENCE_TEXT = (
    "Non-physical reference: thresholds the conditional ⟨Sy²⟩ of the jump unravelling, which no "
    "experiment records (the Σ jumps go unobserved into the reservoir) and which depends on the "
    "choice of unravelling; kept for comparison only. Declares odd N while the signal stays "
    "above the threshold for `hold` (1/Γ); a loss counts as detected if the declared parity "
    "matches the new one within `window` and before the next loss.")
RECORD_ENGINE_NOTE = (
    " Points run by the record-level engine (run.engine: record) hold ⟨Sy²⟩ conditioned on "
    "the measurement record and on the true loss times instead: a Bayesian estimate that also "
    "knows when the losses happened, which the record alone does not tell.")
STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;font-size:80%;display:block;overflow-x:auto;"
         "width:max-content;max-width:100%}"
         "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
         "figure{margin:1em 0}img{max-width:100%}")


#: Most points drawn as lines in one figure.
MAX_LINES = 8


def _time_unit(manifest: dict) -> tuple[str, str]:
    """(axis label of time, its unit in words): Γt in 1/Γ for the spin model with Γ = 1, the
    scenario's own unit otherwise (hybrid: the unit of κ_sqz, κ_int and g)."""
    model = manifest["scenario"]["model"]
    if model.get("kind") == "hybrid":
        return ("κ_sqz t" if model.get("kappa_sqz", 1.0) == 1.0 else "t"), "1/κ_sqz"
    return ("Γt" if model.get("Gamma", 1.0) == 1.0 else "t"), "1/Γ"


def _per(value: float, unit: str) -> str:
    """'0.25/Γ' for value 0.25 in unit '1/Γ'."""
    return f"{value:.3g}{unit[1:]}"


def _what_was_run(manifest: dict) -> str:
    """The scenario in one sentence with its parameters."""
    s, points = manifest["scenario"], manifest["points"]
    model, loss, meas = s["model"], s["loss"], s["measurement"]
    unit = _time_unit(manifest)[1]
    N = model["N"] if "N" in model else sum(g["N"] for g in model["groups"])
    parts = [f"N = {N} spins at r = {model.get('r', 0):g}"]
    if model.get("broadening") and "model.broadening" not in s.get("sweep", {}):
        b = model["broadening"]
        parts.append(f"{b['distribution']} broadening of width {b['width']:g} in "
                     f"{b['groups']} classes")
    if model.get("groups"):
        parts.append("in classes (N, δ, w) = " + ", ".join(
            f"({g['N']}, {g.get('delta', 0.0):g}, {g.get('weight', 1.0):g})"
            for g in model["groups"]))
    if model.get("kind") == "hybrid":
        parts.append(f"coupled (g = {model['g']:g}) to a cavity with κ_sqz = "
                     f"{model.get('kappa_sqz', 1.0):g}, κ_int = {model.get('kappa_int', 0.0):g} "
                     "(Eq. 9)")
    else:
        parts.append(f"Γ = {model.get('Gamma', 1.0):g}")
    locals_ = [f"{k} = {model[k]:g}" for k in ("gamma_coll", "gamma_phi", "gamma_rel")
               if model.get(k)]
    parts += locals_
    losses = []
    if loss.get("rate_per_spin"):
        losses.append(f"Poisson losses at {loss['rate_per_spin']:g} per spin and unit time")
    if loss.get("times"):
        losses.append("scripted losses at t = " + ", ".join(f"{t:g}" for t in loss["times"]))
    parts.append(" and ".join(losses) if losses else "no spin loss")
    if meas.get("kind", "none") != "none":
        every = f"every {_per(meas['period'], unit)}" if meas.get("period") else \
            f"at {len(meas.get('times', []))} listed times"
        how = {"projective": "projectively", "weak": f"weakly (σ = {meas.get('sigma')})",
               "copies": f"on {meas.get('shots')} copies"}[meas["kind"]]
        parts.append(f"S_y measured {how} {every}")
    else:
        parts.append("no S_y instrument")
    n = sorted({int(p["trajectories"]) for p in points})
    swept = ", ".join(s.get("sweep", {}))
    sweep = f"; {len(points)} sweep points over {swept}" if swept else ""
    return (f"{'; '.join(parts)}; up to t = {_per(s['time']['t_end'], unit)}, "
            f"{'–'.join(map(str, n))} trajectories per point{sweep}.")


def _percent(p: float, low: float, high: float) -> str:
    if not np.isfinite(p):
        return "—"
    return f"{100 * p:.0f} % [{100 * low:.0f}–{100 * high:.0f}]"


def _alarms(row) -> str:
    """False alarms per 100 time units, with the 95 % upper bound when none was seen."""
    if row.false_alarms == 0:
        return f"0 (< {100 / row.arl_low:.2g})" if np.isfinite(row.arl_low) else "0"
    return f"{100 / row.arl:.3g}"


def detector_table(summary: pd.DataFrame, unit: str, swept: bool) -> pd.DataFrame:
    """The record detectors in 5-8 columns: what each detects, how fast, how often it errs."""
    table = pd.DataFrame({
        "detector": summary.detector,
        "detected [95 %]": [_percent(*r) for r in
                            summary[["p_detect", "p_detect_low", "p_detect_high"]].to_numpy()],
        f"median latency ({unit})": summary.latency_median.map(
            lambda x: f"{x:.3g}" if np.isfinite(x) else "—"),
        f"false alarms per {_per(100, unit)}": [_alarms(r) for r in summary.itertuples()],
        "single-outcome error": summary.single_shot_error.map(
            lambda x: f"{x:.3g}" if np.isfinite(x) else "—"),
        "outcomes for 99 %": summary.outcomes_for_99pct.map(
            lambda x: f"{x:.0f}" if np.isfinite(x) else "—"),
    })
    if swept:
        table.insert(0, "point", summary.label.to_numpy())
    return table


def _answer(summary: pd.DataFrame, unit: str, lost: bool, along: str | None = None) -> str:
    """One sentence on what the numbers mean: the best record detector, or why there is none;
    and for a sweep along one name (``along``) how that detector fares from its first point to
    its last."""
    rows = summary[np.isfinite(summary.p_detect)]
    if not lost:
        return "No spin was lost, so there is nothing to detect."
    if summary.losses.sum() == 0 or rows.empty:
        return ("No loss can be judged: each came within detection.window of the end of the "
                "run (or of an earlier loss); run longer to measure detection.")
    best = rows.loc[rows.p_detect.idxmax()]
    where = f" (at {best.label})" if rows.label.nunique() > 1 else ""
    alarm = ("no false alarm" if best.false_alarms == 0
             else f"a false alarm every {_per(best.arl, unit)}")
    verdict = (f"The best record detector{where}, {best.detector}, detects "
               f"{_percent(best.p_detect, best.p_detect_low, best.p_detect_high)} of the losses "
               f"with a median latency of {_per(best.latency_median, unit)} and {alarm}")
    between = best.quiet_time / max(best.losses, 1)  # about the time between two losses
    if best.p_detect < 0.5:
        verdict += ("; below 50 %: at this readout no record detector is usable within its "
                    "detection window")
    elif best.false_alarms and best.arl < between:
        verdict += (f" — more often than a loss happens (about every {_per(between, unit)}), "
                    "so its declarations are mostly false at this readout")
    ends = rows[rows.detector == best.detector].sort_values("point").iloc[[0, -1]]
    if along is None or ends.point.nunique() < 2:
        return verdict + "."
    first, last = ends.itertuples()
    value = {row.point: row.label.split("=", 1)[1] for row in (first, last)}
    return (f"{verdict}. Along {along} ({value[first.point]} → {value[last.point]}) it detects "
            f"{_percent(first.p_detect, first.p_detect_low, first.p_detect_high)} → "
            f"{_percent(last.p_detect, last.p_detect_low, last.p_detect_high)} of the losses, with "
            f"{_alarms(first)} → {_alarms(last)} false alarms per {_per(100, unit)}.")


#: Legend entries up to this many characters fit inside the ensemble figure's first panel.
LEGEND_INSIDE = 32


def _ensemble_figure(manifest: dict, summary: pd.DataFrame, files: dict) -> str:
    """⟨Sy²⟩(t), ⟨Sz⟩(t) and ξ²(t) with SEM bands, against the exact Eq. (2) steady values of
    N and N − 1 (spin model, Γ the only rate, N ≤ 300)."""
    label, unit = _time_unit(manifest)
    points = _points(manifest)
    names = _labels(manifest, points)[:MAX_LINES]
    fig, axes = _figure(1, 3, figsize=(12, 3.6))
    exact_lines = False
    for p, (point, name) in enumerate(zip(points, names)):
        rows = summary[summary.point == p]
        for ax, col in zip(axes, ("Sy2", "Sz"), strict=False):
            line, = ax.plot(rows.t, rows[f"{col}_mean"], lw=1, label=name)
            ax.fill_between(rows.t, rows[f"{col}_mean"] - rows[f"{col}_sem"],
                            rows[f"{col}_mean"] + rows[f"{col}_sem"], alpha=0.25,
                            color=line.get_color(), lw=0)
        axes[2].plot(rows.t, rows.xi2.where(np.isfinite(rows.xi2)), lw=1, label=name)
        for N, style in ((point["model"]["N"], "--"), (point["model"]["N"] - 1, ":")):
            steady = _steady(point, N)
            if steady is None:
                continue
            for ax, key in zip(axes, ("Sy2", "Sz", "xi2"), strict=True):
                ax.axhline(steady[key], color="0.3", ls=style, lw=0.8,
                           label=f"steady, N = {N}" if p == 0 else None)
            exact_lines = True
    axes[0].set(ylabel="⟨Sy²⟩")
    axes[1].set(ylabel="⟨Sz⟩")
    axes[2].set(ylabel="ξ² (Eq. 1)")
    for ax, column in ((axes[0], summary.Sy2_mean), (axes[2], summary.xi2)):
        if (np.isfinite(column) & (column > 0)).any():  # a log axis needs positive values
            ax.set_yscale("log")
    for ax in axes:
        ax.set(xlabel=f"{label} ({unit})" if label == "t" else label)
    long = max(map(len, names)) > LEGEND_INSIDE
    if long:  # below the axes, where it hides no data
        fig.tight_layout()
        axes[1].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    else:
        axes[0].legend(fontsize=7)
    _save(fig, files, "ensemble.png", outside=long)
    more = f" (the first {MAX_LINES} of {len(points)} points)" if len(points) > MAX_LINES else ""
    where = "spin model without classes, Γ > 0 the only rate, N ≤ 300"
    if not exact_lines:
        return (f"Ensemble means with their standard-error bands{more}. The exact Eq. (2) steady "
                f"states of N and N − 1 spins are not drawn: they hold for the {where}.")
    return (f"Ensemble means with their standard-error bands{more}; dashed and dotted lines: the "
            f"exact Eq. (2) steady states of N and N − 1 spins where they apply ({where}).")


def _steady(point, N: int) -> dict | None:
    m = point["model"]
    if (m["kind"] != "spin" or not m["Gamma"] > 0 or N < 1 or N > 300 or m.get("groups")
            or any(m[k] for k in ("gamma_coll", "gamma_phi", "gamma_rel", "chi"))):
        return None
    return exact.steady_observables(N, m["r"])


def write_report(path) -> Path:
    """The answer first (what was run, what the record detectors achieve), then the ensemble
    against the exact steady states, the records and the conditional reference: DIR/report/
    (report.md, report.html, CSVs, PNGs); returns that folder.  Runs with run.store: summary
    get the headline and the ensemble section."""
    manifest, directory = load_finished(path)
    name = printable(manifest["scenario"]["name"], 200)
    label, unit = _time_unit(manifest)
    swept = bool(manifest["scenario"].get("sweep"))
    files: dict[str, bytes] = {}
    sections = []  # (title, text, table, figures)
    warnings: list[str] = []
    if manifest["scenario"]["run"].get("store") != "trajectories":
        answer = ("This run kept only its ensemble statistics (run.store: summary): there are "
                  "no measurement records to detect losses from; run with run.store: "
                  "trajectories for the detection statistics.")
        events = None
    else:
        manifest, traj, events = load_run(path)
        results = analyse(manifest, traj, events)
        files.update({"detection.csv": _csv(results["summary"]),
                      "losses.csv": _csv(results["losses"]), "roc.csv": _csv(results["roc"])})
        warnings = _warnings(manifest, events)
        if manifest["scenario"]["measurement"].get("kind", "none") != "none":
            record = record_analysis(manifest, directory.read_table("measurements"), events)
            files["record_detection.csv"] = _csv(record["summary"])
            files["record_roc.csv"] = _csv(record["roc"])
            names = _swept(manifest, _points(manifest))
            answer = _answer(record["summary"], unit, bool((events.kind == "loss").any()),
                             names[0] if len(names) == 1 else None)
            figures = _record_figures(record, files, unit)
            if swept:
                figures.update(_record_sweep_figure(record["summary"], manifest, files, unit))
            sections.append(("Detection from the measurement record", RECORD_TEXT,
                             detector_table(record["summary"], unit, swept), figures))
            if "loss.rate_per_spin" in manifest["scenario"]["sweep"]:
                bandwidth = measured_bandwidth(record["summary"], manifest)
                files["record_bandwidth.csv"] = _csv(bandwidth)
                text = BANDWIDTH_TEXT
                if bandwidth.bandwidth_rate_per_spin.isna().all():
                    text += (" No detector reached 90 % at any swept rate here, so there is no "
                             "bandwidth to state (NaN).")
                sections.append(("Bandwidth, measured", text, bandwidth, {}))
        else:
            answer = ("This run has no S_y instrument (measurement.kind: none), so there is no "
                      "measurement record to detect a loss from; the ensemble below shows the "
                      "even-odd effect itself. Add measurement: {kind: weak, period: 0.25, "
                      "sigma: 1} for detection statistics.")
    summary = directory.read_table("summary")
    sections.append(("Ensemble", "", None,
                     {"ensemble.png": _ensemble_figure(manifest, summary, files)}))
    if events is not None:
        if manifest["scenario"]["measurement"].get("kind", "none") != "none":
            for p, (point_label, recs, chosen) in enumerate(record["examples"]):
                if recs:
                    trace = f"record_traces_p{p:05d}.png"
                    caption = _record_traces(point_label, recs, chosen, files, trace, label)
                    sections.append((f"Records: {point_label}", "", None, {trace: caption}))
        reference = REFERENCE_TEXT
        if any(p["run"]["engine"] == "record" for p in _points(manifest)):
            reference += RECORD_ENGINE_NOTE
        sections.append(("Reference: conditional ⟨Sy²⟩ (not measurable)", reference,
                         results["summary"][REFERENCE_COLUMNS],
                         _figures(results, events, files, manifest)))
    files.update(_documents(name, [_what_was_run(manifest), answer], warnings, sections, files))
    files["settings.json"] = json.dumps(manifest["scenario"]["detection"]).encode()
    write_owned(Path(path) / "report", files)
    return Path(path) / "report"


#: The reference detector's table in the report (all columns are in detection.csv).
REFERENCE_COLUMNS = ["label", "losses", "detected", "p_detect", "latency_median", "false_flips",
                     "rate", "threshold"]


def _documents(name: str, headline: list[str], warnings: list[str], sections: list,
               files: dict) -> dict[str, bytes]:
    """report.md and report.html: the headline, warnings, then each section's text, table
    and figures (embedded in the HTML)."""
    text = [f"# Parity detection report: {name}", ""] + [f"**{headline[0]}**", "",
                                                          headline[1], ""]
    text += [f"> **Warning:** {w}\n" for w in warnings]
    html = [f"<h1>Parity detection report: {name}</h1>",
            f'<p class="what"><strong>{headline[0]}</strong></p>',
            f'<p class="answer">{headline[1]}</p>']
    html += [f'<p class="warning"><strong>Warning:</strong> {w}</p>' for w in warnings]
    for title, explanation, table, figures in sections:  # the table first, then what it means
        text += [f"## {title}", ""]
        html += [f"<h2>{title}</h2>"]
        if table is not None:
            text += [_markdown(table), ""]
            html.append(table.to_html(index=False, float_format="%.4g", na_rep="—"))
        text += [explanation, ""] if explanation else []
        html += [f"<p>{explanation}</p>"] if explanation else []
        text += [f"![{caption}]({file})\n\n{caption}\n" for file, caption in figures.items()]
        for file, caption in figures.items():
            data = base64.b64encode(files[file]).decode()
            html.append(f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>trajsim report: '
            f"{name}</title><style>{STYLE}</style></head><body>" + "\n".join(html)
            + "</body></html>")
    return {"report.md": "\n".join(text).encode(), "report.html": page.encode()}


def _warnings(manifest: dict, events: pd.DataFrame) -> list[str]:
    """What makes the numbers below meaningless or needs saying: no spin loss, the hybrid
    model's units and reduction, a Fock cut-off that is too low, or no reservoir."""
    out = []
    if not (events.kind == "loss").any():
        out.append("This run has no spin loss (loss.rate_per_spin and loss.times are 0/empty): "
                   "there is nothing to detect; detection probabilities are undefined.")
    if manifest["scenario"]["model"].get("kind") == "hybrid":
        out.append("This run simulates Eq. (9), spins + cavity + squeezed reservoir (model.kind: "
                   "hybrid): times, rates and latencies below are in the unit of its rates "
                   "(1/κ_sqz when κ_sqz = 1), and the automatic threshold and the Bayesian filter "
                   "use its Eq. (11) reduction (Γ, γ_coll of Eqs. (12)-(13)), which misses the "
                   "cavity's delay beyond √N g ~ κ (docs/validation.md).")
    for p, record in enumerate(manifest["points"]):
        if record.get("top_fock_max", 0.0) > WARN_TOP_WEIGHT:
            out.append(f"Point {p}: the trajectories hold up to {record['top_fock_max']:.2g} of "
                       "their weight in the top two Fock levels of the cavity: model.n_max is "
                       "too small and distorts the dynamics (at 2e-4 a steady ⟨Sy²⟩ was 2 % "
                       "off).")
    if {"groups", "broadening"} & set(manifest["scenario"]["model"]):
        out.append("This run simulates classes of spins with their own detunings and couplings "
                   "(model.groups): the automatic threshold and the CUSUM are designed on the "
                   "symmetric Eq. (2) steady states of N and N − 1 spins (no disorder), so they "
                   "test how a detector built for the ideal ensemble copes; the exact Bayesian "
                   "filter, the single-outcome discrimination and the steady-state lines do not "
                   "apply and are left out.")
    if manifest["scenario"]["model"].get("Gamma", 1.0) == 0:
        out.append("Gamma = 0: without the reservoir of Eq. (2) there is no even-odd steady "
                   "state; the automatic settings assume it.")
    return out
