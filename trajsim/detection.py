"""Parity detection statistics: thresholding S_y^2 to detect single-spin loss (Sec. III D, Fig. 4b).

The true parity of N(t) comes from the loss events; the detector sees a per-trajectory signal
(the conditional <Sy^2> on the sample grid), declares "odd" when the signal is above a threshold
and "even" below it, and changes its declared parity only after the signal has stayed on the new
side for ``hold`` time units (debouncing).  From the two timelines:

- per loss event: detected within ``window`` (and before the next loss) or missed, and latency;
- false parity flips per unit time in quiet intervals (true parity constant, ``settle`` after a
  loss excluded), with Wilson (detection probability), exact Poisson (flip rate) and bootstrap
  (median latency) intervals.

Everything here is pandas/numpy on the run directory's tables; nothing touches the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats


@dataclass(frozen=True)
class Detector:
    """Threshold classifier settings (scenario key ``detection``)."""

    threshold: float
    hold: float
    smooth: float  # trailing moving average of the signal over this time (0: none)
    window: float  # time allowed for a detection: a few 1/Gamma (the relaxation time
    settle: float  # after a loss is at most ~1/Gamma, Sec. III D); quiet time after a loss


def wilson_interval(k, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion k/n, made to hold k/n within [0, 1]:
    at k = 0 its lower end is 0 exactly and at k = n its upper end 1 (the formula gives them to
    rounding, 5.6e-17 above 0 at n = 3, 1.1e-16 below 1 at n = 10, 2.2e-16 above 1 elsewhere:
    error bars that matplotlib refuses)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
        return np.clip(np.fmin(centre - half, p), 0.0, 1.0), \
            np.clip(np.fmax(centre + half, p), 0.0, 1.0)


def poisson_rate_interval(count, exposure, confidence: float = 0.95):
    """Exact (Garwood) interval for a Poisson rate count / exposure."""
    count = np.asarray(count, float)
    alpha = 1 - confidence
    lower = np.where(count > 0, stats.chi2.ppf(alpha / 2, 2 * count) / 2, 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * count + 2) / 2
    return lower / exposure, upper / exposure


def bandwidth(latencies: np.ndarray, p_detect: float, error: float = 0.1) -> float:
    """Largest total loss rate lambda the detector follows with probability >= 1 - error.

    A loss is followed if it is detected and no further loss arrives before the detection:
    P(lambda) = p_detect * mean(exp(-lambda * latency)) for Poisson losses (latencies measured).
    """
    if latencies.size == 0 or not p_detect > 1 - error:
        return 0.0
    followed = lambda rate: p_detect * np.mean(np.exp(-rate * latencies)) - (1 - error)
    high = 1.0
    while followed(high) > 0 and high < 1e9:
        high *= 2
    return float(optimize.brentq(followed, 0.0, high)) if followed(high) < 0 else np.inf


def bootstrap_median(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median (fixed seed: reports are reproducible)."""
    if values.size < 2 or np.all(values == values[0]):
        value = float(values[0]) if values.size else np.nan
        return value, value
    result = stats.bootstrap((values,), np.median, confidence_level=confidence,
                             method="percentile", n_resamples=2000,
                             random_state=np.random.default_rng(0))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def parity_timeline(events: pd.DataFrame, initial_N: dict[int, int],
                    trajectories: pd.DataFrame) -> pd.DataFrame:
    """True N and parity per (point, trajectory, t) on the sample grid, from the loss events.

    ``trajectories`` supplies the grid (point, trajectory, t); ``initial_N`` maps point -> N(0).
    A sample at a loss time sees the state after the loss (as the engine does).
    """
    grid = trajectories[["point", "trajectory", "t"]].copy()
    lost = np.zeros(len(grid), np.int64)
    rows_of = grid.groupby(["point", "trajectory"]).indices
    times = grid.t.to_numpy()
    for key, group in events[events.kind == "loss"].groupby(["point", "trajectory"]):
        rows = rows_of.get(key)
        if rows is not None:
            lost[rows] = np.searchsorted(np.sort(group.t.to_numpy()), times[rows], side="right")
    grid["N_true"] = grid.point.map(initial_N).to_numpy() - lost
    grid["odd_true"] = grid.N_true % 2 == 1
    return grid


def trailing_mean(t: np.ndarray, signal: np.ndarray, width: float) -> np.ndarray:
    """Mean of the samples in (t - width, t] at every sample (a causal moving average)."""
    cumulative = np.concatenate([[0.0], np.cumsum(signal)])
    start = np.searchsorted(t, t - width, side="right")
    stop = np.arange(1, t.size + 1)
    return (cumulative[stop] - cumulative[start]) / (stop - start)


def declared_parity(t: np.ndarray, signal: np.ndarray, detector: Detector,
                    start_odd: bool) -> np.ndarray:
    """Debounced threshold classifier on one trajectory: True where it declares odd parity."""
    if detector.smooth > 0:
        signal = trailing_mean(t, signal, detector.smooth)
    above = signal > detector.threshold
    declared = np.empty(t.size, bool)
    state, since = start_odd, None
    for i in range(t.size):
        if above[i] != state:
            since = t[i] if since is None else since
            if t[i] - since >= detector.hold:
                state, since = above[i], None
        else:
            since = None
        declared[i] = state
    return declared


def classify(timeline: pd.DataFrame, signal: pd.Series, detector: Detector) -> pd.DataFrame:
    """Add the declared parity to the timeline (each trajectory starts declared as its truth)."""
    out = timeline.assign(signal=signal.to_numpy())
    declared = np.empty(len(out), bool)
    t, values, truth = out.t.to_numpy(), out.signal.to_numpy(), out.odd_true.to_numpy()
    for idx in out.groupby(["point", "trajectory"], sort=False).indices.values():
        rows = np.asarray(idx)
        declared[rows] = declared_parity(t[rows], values[rows], detector, bool(truth[rows[0]]))
    return out.assign(odd_declared=declared)


def loss_detections(classified: pd.DataFrame, events: pd.DataFrame,
                    detector: Detector) -> pd.DataFrame:
    """One row per loss: detected (declared parity matches the new truth within the window and
    before the next loss) and latency (first such sample time minus the loss time)."""
    rows = []
    tracks = classified.groupby(["point", "trajectory"]).indices
    t_all = classified.t.to_numpy()
    right = (classified.odd_declared == classified.odd_true).to_numpy()
    for (point, traj), group in events[events.kind == "loss"].groupby(["point", "trajectory"]):
        index = tracks[(point, traj)]
        t, hit = t_all[index], right[index]
        times = np.sort(group.t.to_numpy())
        for k, t_loss in enumerate(times):
            t_next = times[k + 1] if k + 1 < len(times) else np.inf
            limit = min(t_loss + detector.window, t_next)
            found = np.flatnonzero((t >= t_loss) & (t < limit) & hit)
            rows.append({"point": point, "trajectory": traj, "t_loss": t_loss,
                         "N_after": int(group.N.to_numpy()[k]), "detected": found.size > 0,
                         "latency": t[found[0]] - t_loss if found.size else np.nan,
                         "complete_window": t.max() >= limit})
    return pd.DataFrame(rows, columns=["point", "trajectory", "t_loss", "N_after", "detected",
                                       "latency", "complete_window"])


def false_flips(classified: pd.DataFrame, events: pd.DataFrame,
                detector: Detector) -> pd.DataFrame:
    """Per point: declared-parity flips during quiet time (truth constant, at least ``settle``
    after the last loss), the quiet time, and the flip rate with its Poisson interval."""
    loss_times = {key: np.sort(g.t.to_numpy()) for key, g in
                  events[events.kind == "loss"].groupby(["point", "trajectory"])}
    t_all, declared_all = classified.t.to_numpy(), classified.odd_declared.to_numpy()
    tracks = classified.groupby(["point", "trajectory"]).indices
    rows = []
    for point in sorted(classified.point.unique()):
        flips, exposure = 0, 0.0
        for (p, traj), index in tracks.items():
            if p != point:
                continue
            t, declared = t_all[index], declared_all[index]
            quiet = np.ones(t.size, bool)
            for t_loss in loss_times.get((point, traj), ()):
                quiet &= ~((t >= t_loss) & (t < t_loss + detector.settle))
            step_quiet = quiet[1:] & quiet[:-1]
            flips += int(np.sum((declared[1:] != declared[:-1]) & step_quiet))
            exposure += float(np.sum(np.diff(t)[step_quiet]))
        low, high = poisson_rate_interval(flips, exposure) if exposure > 0 else (np.nan, np.nan)
        rows.append({"point": point, "false_flips": flips, "quiet_time": exposure,
                     "rate": flips / exposure if exposure > 0 else np.nan,
                     "rate_low": float(low), "rate_high": float(high)})
    return pd.DataFrame(rows)


def summarize(detections: pd.DataFrame, flips: pd.DataFrame) -> pd.DataFrame:
    """Per point: losses, detection probability with Wilson interval, median latency, flip rate."""
    rows = []
    for point, group in flips.groupby("point"):
        det = detections[(detections.point == point) & detections.complete_window]
        k, n = int(det.detected.sum()), len(det)
        low, high = wilson_interval(k, n) if n else (np.nan, np.nan)
        rows.append({"point": point, "losses": n, "detected": k,
                     "p_detect": k / n if n else np.nan, "p_detect_low": float(low),
                     "p_detect_high": float(high),
                     "latency_median": float(det.latency.median()) if k else np.nan,
                     "bandwidth_10pct": bandwidth(det.latency.dropna().to_numpy(), k / n)
                     if n else np.nan,
                     **dict(zip(("latency_median_low", "latency_median_high"),
                                bootstrap_median(det.latency.dropna().to_numpy()))),
                     **group.iloc[0][["false_flips", "quiet_time", "rate", "rate_low",
                                      "rate_high"]].to_dict()})
    return pd.DataFrame(rows)
