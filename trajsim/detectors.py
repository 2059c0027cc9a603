"""Spin-loss detectors that read only the measurement record: S_y outcomes, never the
conditional state or the true N (Sec. III D; the physical counterpart of ``detection``).

The truth (the loss times) only scores the declarations.  Per trajectory, with outcomes y_i at
times t_i (``measurements.parquet``; k copies at a time are pooled), a detector declares a
parity after every outcome, starting from the known parity of N(0):

- ``threshold``: the signal s_i = y_i^2 (mean over copies); the declaration turns odd after
  ``hold`` consecutive outcomes with s > theta, even after ``hold`` with s <= theta.
- ``cusum``: Page's test on the log-likelihood ratio l_i = log p_odd(y_i) - log p_even(y_i) of
  the exact single-outcome laws of the steady states of the two parities (N0 and N0 - 1):
  S <- max(0, S + l_i) while even is declared (S <- max(0, S - l_i) while odd); at S > h the
  declaration changes and S restarts from 0.  Optimal for independent outcomes (period much
  longer than 1/gap); Lorden's bound gives a false-alarm run length of at least e^h outcomes.

Scoring cannot flatter: a loss is detected only if the declaration *changes* to the new parity
at a post-loss outcome within ``window`` and before the next loss (latency >= the time to the
first outcome after the loss); a false alarm is a change away from the truth in quiet time (at
least ``settle`` after a loss), reported as the average run length quiet time / false alarms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from .detection import bandwidth, bootstrap_median, poisson_rate_interval, wilson_interval
from .discrimination import _steady_sy
from .engines import initial_ensemble
from .ladder import ladder_bytes
from .model import Rates
from .parity_filter import LadderUnavailable, ParityFilter, filter_declarations
from .point import measurement_times

log = logging.getLogger("trajsim")

#: A likelihood ratio beyond e^20 decides alone; clipping keeps sums finite (projective records:
#: integer vs half-integer outcomes).
LLR_CLIP = 20.0


@dataclass(frozen=True)
class OutcomeLaw:
    """Exact single-outcome laws of the Eq. (2) steady states of the even and odd spin numbers
    among N0 and N0 - 1, for an instrument of resolution ``sigma`` (0: projective)."""

    N0: int
    r: float
    sigma: float

    def log_density(self, y: np.ndarray, odd: bool) -> np.ndarray:
        N = self.N0 if (self.N0 % 2 == 1) == odd else self.N0 - 1
        my, p = _steady_sy(N, self.r)
        y = np.asarray(y, float)
        with np.errstate(divide="ignore"):
            if self.sigma == 0:
                return np.log(_lattice(my, p, y))
            z = (y[..., None] - my) / self.sigma
            return logsumexp(-0.5 * z**2, b=p, axis=-1) - np.log(self.sigma * np.sqrt(2 * np.pi))

    def llr(self, y: np.ndarray) -> np.ndarray:
        """log p_odd(y) - log p_even(y), clipped to +-LLR_CLIP.  A projective outcome that
        both steady laws give no weight (a state far from steady, e.g. just after a loss)
        still counts by its lattice: half-integer for odd N, integer for even N."""
        y = np.asarray(y, float)
        with np.errstate(invalid="ignore"):
            value = self.log_density(y, True) - self.log_density(y, False)
        if self.sigma == 0:
            lattice = np.where(np.rint(2 * y) % 2 == 1, LLR_CLIP, -LLR_CLIP)
            value = np.where(np.isnan(value), lattice, value)
        return np.clip(np.nan_to_num(value, nan=0.0), -LLR_CLIP, LLR_CLIP)

    def auto_threshold(self) -> float:
        """The theta of the y^2 threshold with the smallest total error of one outcome,
        P_even(y^2 > theta) + P_odd(y^2 <= theta), from the exact laws."""
        half = self.N0 / 2 + 8 * max(self.sigma, 0.5)
        y = np.linspace(0.0, half, 20001)
        if self.sigma == 0:
            y = np.arange(0, self.N0 + 1) / 2
            mass = {odd: np.exp(self.log_density(y, odd)) * np.where(y > 0, 2, 1)
                    for odd in (False, True)}
        else:
            dy = y[1] - y[0]
            mass = {odd: 2 * np.exp(self.log_density(y, odd)) * dy for odd in (False, True)}
        even_above = mass[False][::-1].cumsum()[::-1] - mass[False]  # P_even(|y| > y_k)
        odd_below = mass[True].cumsum()  # P_odd(|y| <= y_k)
        k = int(np.argmin(even_above + odd_below))
        return float(y[k] ** 2)


def _lattice(my: np.ndarray, p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(m_y = y) for outcomes on the lattice of my (others: 0)."""
    index = np.searchsorted(my, y - 1e-9)
    index = np.clip(index, 0, my.size - 1)
    return np.where(np.abs(my[index] - y) < 1e-9, p[index], 0.0)


def threshold_declarations(signal: np.ndarray, theta: float, hold: int,
                           start_odd: bool) -> np.ndarray:
    """Declared odd after each outcome: turns after ``hold`` consecutive outcomes on the
    other side of ``theta``."""
    declared = np.empty(signal.size, bool)
    state, run = start_odd, 0
    for i, above in enumerate(signal > theta):
        run = run + 1 if above != state else 0
        if run >= hold:
            state, run = above, 0
        declared[i] = state
    return declared


def cusum_declarations(llr: np.ndarray, h: float, start_odd: bool) -> np.ndarray:
    """Declared odd after each outcome by Page's CUSUM against the declared parity."""
    declared = np.empty(llr.size, bool)
    state, S = start_odd, 0.0
    for i, value in enumerate(llr):
        S = max(0.0, S + (-value if state else value))
        if S > h:
            state, S = not state, 0.0
        declared[i] = state
    return declared


@dataclass
class Record:
    """One trajectory's record: outcome times, the pooled signal y^2 and LLR per time, the loss
    times (for scoring only) and the parity of N(0)."""

    times: np.ndarray
    signal: np.ndarray
    llr: np.ndarray
    losses: np.ndarray
    start_odd: bool


def records(measurements: pd.DataFrame, events: pd.DataFrame, law: OutcomeLaw,
            N0: int) -> list[Record]:
    """The records of one point's trajectories (copies at one time pooled)."""
    losses = {traj: np.sort(g.t.to_numpy())
              for traj, g in events[events.kind == "loss"].groupby("trajectory")}
    out = []
    y = measurements.outcome.to_numpy()
    table = measurements.assign(y2=y**2, llr=law.llr(y))
    for traj, group in table.groupby("trajectory", sort=True):
        per_time = group.groupby("t", sort=True)
        out.append(Record(np.asarray(list(per_time.groups)), per_time.y2.mean().to_numpy(),
                          per_time.llr.sum().to_numpy(), losses.get(traj, np.zeros(0)),
                          N0 % 2 == 1))
    return out


def score(records_: list[Record], declarations: list[np.ndarray], window: float,
          settle: float) -> dict:
    """Detection probability (Wilson interval), latencies, false alarms and their average run
    length (exact Poisson interval) of one detector setting over the records."""
    latencies, detected, missed = [], 0, 0
    false_alarms, quiet = 0, 0.0
    for rec, declared in zip(records_, declarations, strict=True):
        t = rec.times
        if not t.size:
            continue
        # an outcome at a loss time sees the state after the loss (as the engine does)
        truth = rec.start_odd ^ (np.searchsorted(rec.losses, t, side="right") % 2 == 1)
        changes = declared != np.concatenate([[rec.start_odd], declared[:-1]])
        for k, t_loss in enumerate(rec.losses):
            limit = min(t_loss + window, rec.losses[k + 1] if k + 1 < rec.losses.size else np.inf)
            if limit > t[-1]:
                continue  # the window reaches past the record: not scored
            new_parity = rec.start_odd ^ (k % 2 == 0)
            hits = np.flatnonzero((t >= t_loss) & (t < limit) & changes
                                  & (declared == new_parity))
            if hits.size:
                detected += 1
                latencies.append(t[hits[0]] - t_loss)
            else:
                missed += 1
        settled = np.ones(t.size, bool)
        for t_loss in rec.losses:
            settled &= ~((t >= t_loss) & (t < t_loss + settle))
        false_alarms += int(np.sum(changes & (declared != truth) & settled))
        spans = np.diff(np.concatenate([[0.0], t]))
        quiet += float(np.sum(spans[settled]))
    n = detected + missed
    low, high = wilson_interval(detected, n) if n else (np.nan, np.nan)
    rate_low, rate_high = poisson_rate_interval(false_alarms, quiet) if quiet else (np.nan,) * 2
    latencies = np.asarray(latencies)
    median_low, median_high = bootstrap_median(latencies)
    return {"losses": n, "detected": detected, "p_detect": detected / n if n else np.nan,
            "p_detect_low": float(low), "p_detect_high": float(high),
            "latency_median": float(np.median(latencies)) if latencies.size else np.nan,
            "latency_median_low": median_low, "latency_median_high": median_high,
            "latency_min": float(latencies.min()) if latencies.size else np.nan,
            "false_alarms": false_alarms, "quiet_time": quiet,
            "arl": quiet / false_alarms if false_alarms else np.inf,
            "arl_low": 1 / rate_high if rate_high > 0 else np.nan,
            "arl_high": 1 / rate_low if rate_low > 0 else np.inf,
            "bandwidth_10pct": bandwidth(latencies, detected / n) if n else np.nan}


#: CUSUM threshold by default: Lorden's bound puts the false-alarm run length above e^h = 1000
#: outcomes.
CUSUM_H = float(np.log(1000.0))


def bayes_posteriors(point: dict, measurements: pd.DataFrame) -> list[np.ndarray] | None:
    """P(odd | record) after every outcome of every trajectory from the exact Bayesian filter
    (``parity_filter``), or None where it does not apply (``bayes_applies``) or cannot run
    (``LadderUnavailable``, logged: beyond the memory budget or the exact route)."""
    if not bayes_applies(point):
        return None
    ordered = measurements.sort_values(["trajectory", "t"], kind="stable")
    _, weights, states = initial_ensemble(point)
    rho0 = (states.T * weights) @ states.conj()
    try:
        bayes = ParityFilter(Rates.of(point["model"]), point["model"]["N"], rho0,
                             loss_prior(point), _longest_interval(point),
                             float(point["measurement"]["sigma"] or 0.0))
        records = [(g.outcome.to_numpy(), g.t.to_numpy())
                   for _, g in ordered.groupby("trajectory", sort=True)]
        posteriors = [np.empty(0)] * len(records)
        same = {}  # records at the same times are filtered together
        for i, (_, t) in enumerate(records):
            same.setdefault(t.tobytes(), []).append(i)
        for rows in same.values():
            outcomes = np.stack([records[i][0] for i in rows], axis=1)
            for i, p in zip(rows, bayes.posteriors(outcomes, records[rows[0]][1]).T):
                posteriors[i] = p
        return posteriors
    except LadderUnavailable as why:
        log.warning("no Bayesian filter rows: %s", why)
        return None


def bayes_applies(point: dict) -> bool:
    """The exact filter follows j = N/2 models (no local dissipation, no classes of spins) read
    by a projective or weak instrument (not copies)."""
    model = point["model"]
    return (not model["gamma_phi"] and not model["gamma_rel"] and not model.get("groups")
            and point["measurement"]["kind"] in ("projective", "weak"))


def bayes_bytes(point: dict) -> float | None:
    """Peak memory of the exact filter on this point's records (``ladder.ladder_bytes``), or
    None where it does not apply."""
    if not bayes_applies(point):
        return None
    return ladder_bytes(point["model"]["N"], loss_prior(point), _longest_interval(point))


def _longest_interval(point: dict) -> float:
    """The longest interval between outcomes (from t = 0), which sets the filter's depth."""
    times = measurement_times(point)
    return float(np.diff(times, prepend=0.0).max()) if times.size else 0.0


def loss_prior(point: dict) -> float:
    """The Bayesian filter's Poisson loss rate per spin: ``loss.rate_per_spin``, plus, for
    scripted losses (whose times the observer does not know), the rate that expects as many
    over the run, len(loss.times) / (N t_end).  Without it a run with scripted losses only
    gave the filter a prior of no loss at all, and it never declared one."""
    scripted = len(point["loss"]["times"]) / (point["model"]["N"] * point["time"]["t_end"])
    return point["loss"]["rate_per_spin"] + scripted


def hold_outcomes(hold_time: float, times: np.ndarray) -> int:
    """``detection.hold`` (a time) as a number of consecutive outcomes at the record's spacing."""
    spacing = float(np.median(np.diff(times))) if times.size > 1 else np.inf
    return max(1, int(np.ceil(hold_time / spacing - 1e-9))) if np.isfinite(spacing) else 1


def analyse_point(measurements: pd.DataFrame, events: pd.DataFrame, point: dict,
                  settings: dict) -> tuple[pd.DataFrame, pd.DataFrame, list, dict]:
    """The record detectors on one point at their automatic settings (threshold, CUSUM, and the
    exact Bayesian filter where it applies), and their ROC curves.

    Returns (one summary row per detector, ROC rows over each detector's parameter, the
    records, and the declarations of each detector at its operating point)."""
    N0, meas = point["model"]["N"], point["measurement"]
    law = OutcomeLaw(N0, point["model"]["r"], float(meas["sigma"] or 0.0))
    recs = records(measurements, events, law, N0)
    times = recs[0].times if recs else np.zeros(0)
    theta = law.auto_threshold() if settings["threshold"] == "auto" else float(settings["threshold"])
    hold = hold_outcomes(float(settings["hold"]), times)

    def declare(kind, parameter):
        if kind == "threshold":
            return [threshold_declarations(x.signal, parameter, hold, x.start_odd) for x in recs]
        if kind == "bayes":
            return [filter_declarations(p, parameter, x.start_odd)
                    for x, p in zip(recs, posteriors, strict=True)]
        return [cusum_declarations(x.llr, parameter, x.start_odd) for x in recs]

    window, settle = float(settings["window"]), float(settings["settle"])
    summary, roc, chosen = [], [], {}
    # a projective readout's automatic theta is 0 (any y != 0 says odd): its ROC runs over
    # the lattice of y^2 from 0 up, around the smallest nonzero value 1/4
    thetas = theta * np.geomspace(0.1, 10, 13) if theta > 0 else \
        np.concatenate(([0.0], 0.25 * np.geomspace(0.1, 10, 12)))
    detectors = [("threshold", theta, thetas),
                 ("cusum", CUSUM_H, np.linspace(0.5, 12, 13))]
    posteriors = bayes_posteriors(point, measurements)
    if posteriors is not None:
        detectors.append(("bayes", 0.5, np.linspace(0.5, 0.99, 13)))
    for kind, parameter, sweep in detectors:
        chosen[kind] = declare(kind, parameter)
        summary.append({"detector": kind, "parameter": parameter,
                        "hold_outcomes": hold if kind == "threshold" else np.nan,
                        **score(recs, chosen[kind], window, settle)})
        for value in sweep:
            roc.append({"detector": kind, "parameter": value,
                        **score(recs, declare(kind, value), window, settle)})
    roc = pd.DataFrame(roc)
    roc["false_alarm_rate"] = 1 / roc.arl
    return (pd.DataFrame(summary), roc.sort_values(["detector", "false_alarm_rate"],
                                                   kind="stable"), recs, chosen)
