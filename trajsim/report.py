"""``trajsim report DIR``: parity-detection tables and figures for a finished run directory.

Reads the output contract (manifest, trajectories, events), runs the threshold detector of
``trajsim.detection`` on the ideal conditional <Sy^2> signal, and writes DIR/report/:
report.md, report.html (figures embedded), detection.csv, losses.csv, roc.csv and PNG figures:
traces with the loss events marked (Fig. 4(b) style), <Sy^2> histograms for true even vs odd N
(Fig. S2 style), the ROC over thresholds, and the latency distribution.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import detection, exact
from .detection import Detector
from .engines import engine_for
from .errors import TrajsimError
from .scenario import DEFAULTS
from .store import RunDirectory, RunDirectoryError


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
        points = _points(manifest)
    except TrajsimError as err:
        raise RunDirectoryError(f"{directory.manifest_path}: damaged scenario ({err})") from None
    directory.check_finished(manifest, points, lambda point: engine_for(point).tables(point, True))
    shots = manifest["scenario"]["measurement"]["shots"] > 0
    traj = directory.read_table("trajectories", columns=["point", "trajectory", "t", "N", "Sy2"]
                                + ["Sy2_shots"] * shots)
    events = directory.read_table("events")
    return manifest, traj.sort_values(["point", "trajectory", "t"], kind="stable"), events


def detector_for(manifest: dict, point: dict) -> Detector:
    """The scenario's detection settings (defaults from scenario.DEFAULTS for keys an older
    manifest lacks); threshold ``auto`` resolved for the point."""
    settings = {**DEFAULTS["detection"], **manifest["scenario"]["detection"]}
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
    from .scenario import resolve

    return resolve(manifest["scenario"], manifest["scenario"]["name"]).points


def analyse(manifest, traj, events):
    """Per point: classified samples, per-loss detections, flip statistics, summary, ROC."""
    points = _points(manifest)
    signal = traj["Sy2_shots" if "Sy2_shots" in traj else "Sy2"]
    initial = {p: point["model"]["N"] for p, point in enumerate(points)}
    timeline = detection.parity_timeline(events, initial, traj)
    out = {"classified": [], "losses": [], "summary": [], "roc": []}
    for p, point in enumerate(points):
        mask = (timeline.point == p).to_numpy()
        det = detector_for(manifest, point)
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


def _figures(results, events, folder: Path) -> dict[str, str]:
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
    _save(fig, folder / "traces.png")

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
    _save(fig, folder / "histogram.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    for p, roc in results["roc"].groupby("point"):
        ax.plot(roc.rate, roc.p_detect, "o-", label=f"point {p}")
    chosen = results["summary"]
    ax.plot(chosen.rate, chosen.p_detect, "k*", ms=12, label="chosen threshold")
    ax.set(xlabel="false parity flips per unit time", ylabel="detection probability",
           ylim=(0, 1.02))
    ax.legend(fontsize=7)
    figures["roc.png"] = "ROC: detection probability vs false-flip rate, thresholds ×0.1…×10."
    _save(fig, folder / "roc.png")

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
        ax2.set(ylabel="false flips per unit time")
        for axis in (ax1, ax2):
            axis.tick_params(axis="x", labelrotation=60, labelsize=7)
        figures["sweep.png"] = "Detection probability and false-flip rate per sweep point."
        _save(fig, folder / "sweep.png")

    fig, ax = plt.subplots(figsize=(5, 3.6))
    latency = results["losses"].latency.dropna()
    ax.hist(latency, bins=30)
    ax.set(xlabel="latency (time units)", ylabel="losses")
    figures["latency.png"] = "Latency from a loss to the detector's correct parity."
    _save(fig, folder / "latency.png")
    return figures


def _markdown(df: pd.DataFrame) -> str:
    cells = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in df.values]
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(path) -> Path:
    """Compute the detection statistics of a run and write DIR/report/; returns that folder."""
    manifest, traj, events = load_run(path)
    results = analyse(manifest, traj, events)
    folder = Path(path) / "report"
    folder.mkdir(exist_ok=True)
    results["summary"].to_csv(folder / "detection.csv", index=False, float_format="%.6g")
    results["losses"].to_csv(folder / "losses.csv", index=False, float_format="%.6g")
    results["roc"].to_csv(folder / "roc.csv", index=False, float_format="%.6g")
    figures = _figures(results, events, folder)
    table = _markdown(results["summary"])
    text = [f"# Parity detection report: {manifest['scenario']['name']}", "",
            ("Detector: declares odd N while the conditional ⟨Sy²⟩ stays above the threshold for "
            "`hold` time units (debounced); a loss counts as detected if the declared parity "
            "matches the new true parity within `window` and before the next loss. Intervals: "
            "Wilson (detection probability), exact Poisson (false-flip rate)."), "", table, ""]
    text += [f"![{caption}]({name})\n\n{caption}\n" for name, caption in figures.items()]
    (folder / "report.md").write_text("\n".join(text))
    html = [f"<h1>Parity detection report: {manifest['scenario']['name']}</h1>",
            results["summary"].to_html(index=False, float_format="%.4g")]
    for name, caption in figures.items():
        data = base64.b64encode((folder / name).read_bytes()).decode()
        html.append(f'<figure><img src="data:image/png;base64,{data}"><figcaption>{caption}'
                    "</figcaption></figure>")
    (folder / "report.html").write_text("<html><body>" + "\n".join(html) + "</body></html>")
    (folder / "settings.json").write_text(json.dumps(manifest["scenario"]["detection"]))
    return folder
