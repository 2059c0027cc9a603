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
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import detection, detectors, discrimination, exact
from .detection import Detector
from .engines import engine_for, readout_shots
from .errors import TrajsimError
from .hybrid import WARN_TOP_WEIGHT
from .runner import unit_identities
from .scenario import resolve
from .store import RunDirectory, RunDirectoryError, write_owned


def auto_threshold(N: int, r: float) -> float:
    """Geometric mean of the exact Eq. (2) steady <Sy^2> for N and N - 1 spins."""
    return float(np.sqrt(exact.steady_observables(N, r)["Sy2"]
                         * exact.steady_observables(N - 1, r)["Sy2"]))


def load_run(path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Manifest, trajectories and events of a finished run, or a one-line RunDirectoryError."""
    directory = RunDirectory(path)
    manifest = directory.read_manifest()
    if manifest.get("status") != "done":
        raise RunDirectoryError(f"{path}: the run is not finished; complete it with "
                                "'trajsim run ... --resume' first")
    if manifest["scenario"].get("run", {}).get("store") != "trajectories":
        raise RunDirectoryError(f"{path}: the report needs per-trajectory data; run with "
                                "run.store: trajectories")
    try:
        scenario = resolve(manifest["scenario"], manifest["scenario"].get("name", "scenario"))
    except TrajsimError as err:
        raise RunDirectoryError(f"{directory.manifest_path}: damaged scenario ({err})") from None
    directory.check_finished(
        manifest, unit_identities(scenario),
        [engine_for(point).tables(point, True) for point in scenario.points])
    shots = any(readout_shots(point) for point in scenario.points)
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
    here), with local terms, or without the Eq. (2) reservoir (Gamma = 0)."""
    m = point["model"]
    if m["N"] > 300 or m["gamma_phi"] or m["gamma_rel"] or m["N"] < 3 or not m["Gamma"] > 0:
        return np.nan
    return exact.liouvillian_gap(m["N"] - 1, m["r"], m["Gamma"], even_only=True)


def _label(manifest: dict, point: dict, index: int) -> str:
    """'model.N=40, model.r=2.5' for a sweep point, or 'point 0'."""
    keys = manifest["scenario"]["sweep"]
    if not keys:
        return f"point {index}"
    return ", ".join(f"{k}={point[k.split('.')[0]][k.split('.')[1]]}" for k in keys)


def _points(manifest: dict) -> list[dict]:
    return resolve(manifest["scenario"], manifest["scenario"].get("name", "scenario")).points


def analyse(manifest, traj, events):
    """Per point: classified samples, per-loss detections, flip statistics, summary, ROC."""
    points = _points(manifest)
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
            gap=_gap(point), label=_label(manifest, point, p))
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


def _figures(results, events, files: dict) -> dict[str, str]:
    classified = results["classified"]
    figures = {}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for (p, k), track in list(classified.groupby(["point", "trajectory"]))[:3]:
        line, = ax.plot(track.t, track.signal.clip(lower=1e-6), lw=0.7, label=f"point {p}, traj {k}")
        lost = events[(events.point == p) & (events.trajectory == k) & (events.kind == "loss")]
        ax.plot(lost.t, np.full(len(lost), track.signal.max() * 1.5), "v", color=line.get_color())
    ax.axhline(results["summary"].threshold.iloc[0], color="k", ls="--", lw=0.8, label="threshold")
    ax.set(yscale="log", xlabel="Γt", ylabel="⟨Sy²⟩ (conditional)")
    ax.legend(fontsize=7)
    figures["traces.png"] = "Conditional ⟨Sy²⟩ of three trajectories; triangles mark spin losses."
    _save(fig, files, "traces.png")

    fig, ax = plt.subplots(figsize=(6, 3.6))
    log_signal = np.log10(classified.signal.clip(lower=1e-8))
    bins = np.linspace(log_signal.min(), log_signal.max() + 1e-9, 60)
    for odd, label in ((False, "true N even"), (True, "true N odd")):
        values = log_signal[classified.odd_true == odd]
        if len(values):
            ax.hist(values, bins=bins, alpha=0.6, density=True, label=label)
    ax.axvline(np.log10(results["summary"].threshold.iloc[0]), color="k", ls="--", lw=0.8)
    ax.set(xlabel="log10 ⟨Sy²⟩", ylabel="density per parity")
    ax.legend()
    figures["histogram.png"] = "Distribution of the conditional ⟨Sy²⟩ at all samples, by true parity."
    _save(fig, files, "histogram.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    for p, roc in results["roc"].groupby("point"):
        ax.plot(roc.rate, roc.p_detect, "o-", label=f"point {p}")
    chosen = results["summary"]
    ax.plot(chosen.rate, chosen.p_detect, "k*", ms=12, label="chosen threshold")
    ax.set(xlabel="false parity flips per 1/Γ", ylabel="detection probability",
           ylim=(0, 1.02))
    ax.legend(fontsize=7)
    figures["roc.png"] = "ROC: detection probability vs false-flip rate, thresholds ×0.1…×10."
    _save(fig, files, "roc.png")

    if len(results["summary"]) > 1:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
        summary = results["summary"]
        ax1.errorbar(summary.label, summary.p_detect,
                     yerr=[summary.p_detect - summary.p_detect_low,
                           summary.p_detect_high - summary.p_detect], fmt="o")
        ax1.set(ylabel="detection probability", ylim=(0, 1.02))
        ax2.errorbar(summary.label, summary.rate,
                     yerr=[summary.rate - summary.rate_low, summary.rate_high - summary.rate],
                     fmt="o")
        ax2.set(ylabel="false flips per 1/Γ")
        for axis in (ax1, ax2):
            axis.tick_params(axis="x", labelrotation=60, labelsize=7)
        figures["sweep.png"] = "Detection probability and false-flip rate per sweep point."
        _save(fig, files, "sweep.png")

    fig, ax = plt.subplots(figsize=(5, 3.6))
    latency = results["losses"].latency.dropna()
    ax.hist(latency, bins=30)
    ax.set(xlabel="latency (1/Γ)", ylabel="losses")
    figures["latency.png"] = "Latency from a loss to the detector's correct parity."
    _save(fig, files, "latency.png")
    return figures


def _markdown(df: pd.DataFrame) -> str:
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in df.values]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _save(fig, files: dict, name: str) -> None:
    """The figure as PNG bytes in files[name]."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    files[name] = buffer.getvalue()


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.6g").encode()


def record_analysis(manifest: dict, measurements: pd.DataFrame, events: pd.DataFrame) -> dict:
    """The record detectors (``trajsim.detectors``) on every point: summary and ROC tables, and
    per point (label, records, declarations) for its trace figure."""
    summaries, rocs, examples = [], [], []
    for p, point in enumerate(_points(manifest)):
        summary, roc, recs, chosen = detectors.analyse_point(
            measurements[measurements.point == p], events[events.point == p], point,
            point.detection())
        label = _label(manifest, point, p)
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
    if N < 2 or point["model"]["Gamma"] == 0:
        return {"single_shot_error": np.nan, "outcomes_for_99pct": np.nan}
    try:
        needed = discrimination.outcomes_for_confidence(N, r, sigma)
    except ValueError:  # more than discrimination's n_max
        needed = np.inf
    return {"single_shot_error": discrimination.single_shot_error(N, r, sigma),
            "outcomes_for_99pct": needed}


def _record_sweep_figure(summary: pd.DataFrame, manifest: dict, files: dict) -> dict[str, str]:
    """Detection probability and median latency of each record detector along the sweep."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for detector, group in summary.groupby("detector"):
        ax1.errorbar(group.label, group.p_detect,
                     yerr=[group.p_detect - group.p_detect_low,
                           group.p_detect_high - group.p_detect], fmt="o-", label=detector)
        ax2.errorbar(group.label, group.latency_median,
                     yerr=[group.latency_median - group.latency_median_low,
                           group.latency_median_high - group.latency_median], fmt="o-",
                     label=detector)
    ax1.set(ylabel="detection probability", ylim=(0, 1.02))
    ax2.set(ylabel="median latency (1/Γ)")
    for axis in (ax1, ax2):
        axis.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax1.legend(fontsize=7)
    _save(fig, files, "record_sweep.png")
    return {"record_sweep.png": "Detection probability (Wilson interval) and median latency "
                                "(bootstrap interval) of the record detectors per sweep point."}


def _record_traces(label: str, recs: list, chosen: dict, files: dict, name: str) -> str:
    """Three records of one point: squared outcomes, the true parity and the CUSUM declaration."""
    fig, axes = plt.subplots(len(recs), 1, figsize=(8, 2 * len(recs)), sharex=True,
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
    axes[-1, 0].set(xlabel="Γt")
    _save(fig, files, name)
    return (f"Measurement records of {len(recs)} trajectories ({label}): squared outcomes, the "
            "true parity and the CUSUM declaration.")


def _record_figures(record: dict, files: dict) -> dict[str, str]:
    figures = {}
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (point, kind), roc in record["roc"].groupby(["label", "detector"]):
        ax.plot(roc.false_alarm_rate, roc.p_detect, "o-", ms=3, label=f"{kind}, {point}")
    chosen_rows = record["summary"]
    ax.plot(1 / chosen_rows.arl, chosen_rows.p_detect, "k*", ms=11, label="operating points")
    ax.set(xscale="symlog", xlabel="false alarms per 1/Γ (1 / average run length)",
           ylabel="detection probability", ylim=(0, 1.02))
    ax.legend(fontsize=6)
    figures["record_roc.png"] = ("ROC of the record detectors over their parameter (threshold "
                                 "θ ×0.1…×10, CUSUM h 0.5…12), ordered by false-alarm rate.")
    _save(fig, files, "record_roc.png")
    return figures


RECORD_TEXT = (
    "Detectors that read only the measurement record (S_y outcomes applied with their "
    "back-action, `measurements.parquet`): a threshold on y² held for consecutive outcomes, "
    "Page's CUSUM on the exact log-likelihood ratio of the even and odd steady-state outcome "
    "laws, and (for j = N/2 models up to N = 16) the exact Bayesian parity filter, the best any "
    "detector can do with the record (parameter: the posterior level to declare). "
    "`single_shot_error` and `outcomes_for_99pct` are the exact discrimination of the N and "
    "N − 1 steady states by one outcome, and the independent outcomes needed for 99 % "
    "confidence, at this readout's resolution. A loss counts as detected only if the declaration changes to the new parity at a "
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
         "table{border-collapse:collapse;font-size:80%;display:block;overflow-x:auto}"
         "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
         "figure{margin:1em 0}img{max-width:100%}")


def write_report(path) -> Path:
    """Compute the detection statistics of a run and write DIR/report/; returns that folder."""
    manifest, traj, events = load_run(path)
    name = manifest["scenario"]["name"]
    results = analyse(manifest, traj, events)
    folder = Path(path) / "report"
    files = {"detection.csv": _csv(results["summary"]), "losses.csv": _csv(results["losses"]),
             "roc.csv": _csv(results["roc"])}
    sections = []  # (title, text, table, figures)
    warnings = _warnings(manifest, events)
    if manifest["scenario"]["measurement"].get("kind", "none") != "none":
        record = record_analysis(manifest, RunDirectory(path).read_table("measurements"), events)
        files["record_detection.csv"] = _csv(record["summary"])
        files["record_roc.csv"] = _csv(record["roc"])
        figures = _record_figures(record, files)
        swept = list(manifest["scenario"].get("sweep", {}))
        if swept:
            figures.update(_record_sweep_figure(record["summary"], manifest, files))
        sections.append(("Detection from the measurement record", RECORD_TEXT,
                         record["summary"] if not swept else None, figures))
        if "loss.rate_per_spin" in swept:
            bandwidth = measured_bandwidth(record["summary"], manifest)
            files["record_bandwidth.csv"] = _csv(bandwidth)
            sections.append(("Bandwidth, measured", BANDWIDTH_TEXT, bandwidth, {}))
        for p, (label, recs, chosen) in enumerate(record["examples"]):
            if not recs:
                continue
            trace = f"record_traces_p{p:05d}.png"
            caption = _record_traces(label, recs, chosen, files, trace)
            rows = record["summary"][record["summary"].point == p]
            sections.append((f"Point {p}: {label}" if swept else "Records", "",
                             rows if swept else None, {trace: caption}))
    else:
        warnings.append("No measurement instrument (measurement.kind: none): there is no "
                        "record, so only the non-physical reference below can be computed; add "
                        "measurement: {kind: weak, period: ..., sigma: ...}.")
    reference = REFERENCE_TEXT
    if any(p["run"]["engine"] == "record" for p in resolve(manifest["scenario"], name).points):
        reference += RECORD_ENGINE_NOTE
    sections.append(("Reference: conditional ⟨Sy²⟩ (not measurable)", reference,
                     results["summary"], _figures(results, events, files)))
    text = [f"# Parity detection report: {name}", ""] + [f"> **Warning:** {w}\n" for w in warnings]
    html = [f"<h1>Parity detection report: {name}</h1>"] + \
        [f"<p><strong>Warning:</strong> {w}</p>" for w in warnings]
    for title, explanation, table, figures in sections:
        text += [f"## {title}", "", explanation, ""]
        html += [f"<h2>{title}</h2>", f"<p>{explanation}</p>"]
        if table is not None:
            text += [_markdown(table), ""]
            html.append(table.to_html(index=False, float_format="%.4g"))
        text += [f"![{caption}]({file})\n\n{caption}\n" for file, caption in figures.items()]
        for file, caption in figures.items():
            data = base64.b64encode(files[file]).decode()
            html.append(f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                        f"<figcaption>{caption}</figcaption></figure>")
    files["report.md"] = "\n".join(text).encode()
    files["report.html"] = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>trajsim report: '
        f"{name}</title><style>{STYLE}</style></head><body>" + "\n".join(html)
        + "</body></html>").encode()
    files["settings.json"] = json.dumps(manifest["scenario"]["detection"]).encode()
    write_owned(folder, files)
    return folder


def _warnings(manifest: dict, events: pd.DataFrame) -> list[str]:
    """What makes the numbers below meaningless or needs saying: no spin loss, the hybrid
    model's units and reduction, a Fock cut-off that is too low, or no reservoir."""
    out = []
    if not (events.kind == "loss").any():
        out.append("This run has no spin loss (loss.rate_per_spin and loss.times are 0/empty): "
                   "there is nothing to detect; detection probabilities are undefined.")
    if manifest["scenario"]["model"].get("kind") == "hybrid":
        out.append("This run simulates Eq. (9), spins + cavity + squeezed reservoir (model.kind: "
                   "hybrid): times, rates and latencies below are in the scenario's time unit "
                   "where the text says 1/Γ, and the automatic threshold and the Bayesian filter "
                   "use its Eq. (11) reduction (Γ, γ_coll of Eqs. (12)-(13)), which misses the "
                   "cavity's delay beyond √N g ~ κ (docs/validation.md).")
    for p, record in enumerate(manifest["points"]):
        if record.get("top_fock_max", 0.0) > WARN_TOP_WEIGHT:
            out.append(f"Point {p}: the trajectories hold up to {record['top_fock_max']:.2g} of "
                       "their weight in the top two Fock levels of the cavity: model.n_max is "
                       "too small and distorts the dynamics (at 2e-4 a steady ⟨Sy²⟩ was 2 % "
                       "off).")
    if manifest["scenario"]["model"].get("Gamma", 1.0) == 0:
        out.append("Gamma = 0: without the reservoir of Eq. (2) there is no even-odd steady "
                   "state; the automatic settings assume it.")
    return out
