"""Single-shot parity discrimination, exact: how well S_y outcomes tell the Eq. (2) steady
states of N and N - 1 spins apart (the sensor's figure of merit behind Fig. S2).

One outcome of resolution sigma (``measurement.kind: weak``; sigma = 0 is projective) has the
density p_N(y) = sum_m P_N(m_y) N(y; m_y, sigma^2), with P_N the exact S_y distribution of the
steady state (``exact.sy_distribution``).  With equal priors the smallest error of one outcome is

    P_err = (1/2) ∫ min(p_N(y), p_{N-1}(y)) dy,

and n independent outcomes (measurement period >> 1/gap) are decided by the sign of the summed
log-likelihood ratio; ``outcomes_for_confidence`` finds the smallest n whose error is at most
1 - confidence, from the exact distribution of that sum (FFT convolution powers on a fine grid).

Note: a projective outcome m_y is an integer for even N and a half-integer for odd N, so one
projective outcome tells the parity without error; a real readout has a resolution sigma of at
least half a spin, where only the variance contrast is left.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
from scipy.special import ndtr

from .exact import sy_distribution


@cache
def _steady_sy(N: int, r: float) -> tuple[np.ndarray, np.ndarray]:
    return sy_distribution(N, r)


def _grid(N: int, sigma: float) -> np.ndarray:
    """Bin edges for outcomes y: width sigma/20 over the spectrum plus 8 sigma on each side."""
    half = N / 2 + 8 * sigma
    return np.linspace(-half, half, int(np.ceil(2 * half / (sigma / 20))) + 1)


def outcome_probabilities(N: int, r: float, sigma: float, edges: np.ndarray) -> np.ndarray:
    """Probability of a weak outcome in each bin [edges[i], edges[i+1]) for the steady state."""
    my, p = _steady_sy(N, r)
    cdf = ndtr((edges[:, None] - my[None, :]) / sigma) @ p
    return np.diff(cdf)


@lru_cache(maxsize=16)
def _pair(N: int, r: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Outcome probabilities of the N and N - 1 steady states on a common fine grid (cached:
    the search for the outcomes needed asks for them at every trial n; read-only)."""
    if sigma == 0:
        values = np.arange(-N, N + 1) / 2
        pe, po = (np.zeros(values.size) for _ in range(2))
        for n, out in ((N, pe), (N - 1, po)):
            my, p = _steady_sy(n, r)
            out[np.rint(2 * my).astype(int) + N] = p
        return pe, po
    edges = _grid(N, sigma)
    return outcome_probabilities(N, r, sigma, edges), outcome_probabilities(N - 1, r, sigma, edges)


def single_shot_error(N: int, r: float, sigma: float = 0.0) -> float:
    """Smallest error probability of deciding N vs N - 1 from one outcome (equal priors)."""
    pe, po = _pair(N, r, sigma)
    return 0.5 * float(np.minimum(pe, po).sum())


def decision_error(N: int, r: float, sigma: float, n: int) -> float:
    """Error probability of the likelihood-ratio decision between the N and N - 1 steady states
    from n independent outcomes (equal priors; ties split evenly)."""
    histograms = _llr_histograms(N, r, sigma)
    if histograms is None:  # every outcome decides at once
        return 0.0
    offset, width, _, undecided = histograms
    size = 1 << int(np.ceil(np.log2(n * width)))
    total = 0.0
    for side, wrong_side in ((0, 1), (1, -1)):
        spectrum = _llr_spectrum(N, r, sigma, size)[side]
        pmf = np.fft.irfft(_power(spectrum, n), size)[: n * (width - 1) + 1]
        sums = np.arange(pmf.size) + n * offset  # in units of step
        wrong = pmf[sums * wrong_side > 0].sum() + 0.5 * pmf[sums == 0].sum()
        total += 0.5 * undecided[side] ** n * max(wrong, 0.0)
    return total


def _power(z: np.ndarray, n: int) -> np.ndarray:
    """z**n for an integer n >= 1 by repeated squaring (numpy's complex power goes through
    exp and log, several times slower on the long spectra here)."""
    result, base = None, z
    while n:
        if n & 1:
            result = base.copy() if result is None else result * base
        n >>= 1
        if n:
            base = base * base
    return result


@lru_cache(maxsize=16)
def _llr_histograms(N: int, r: float, sigma: float):
    """The single-outcome log-likelihood ratio log p_odd/p_even on a grid of ``step``: (offset,
    width, (hist_even, hist_odd), (undecided_even, undecided_odd)), the histograms conditioned
    on an undecisive outcome; None if every outcome decides alone (cached: read-only)."""
    pe, po = _pair(N, r, sigma)
    keep = (pe > 0) & (po > 0)  # an outcome possible under one hypothesis only decides at once
    if not keep.any():
        return None
    # beyond |20| one outcome outweighs the rest of any record this short (error change <= e^-20)
    llr = np.clip(np.log(po[keep]) - np.log(pe[keep]), -20.0, 20.0)
    # the grid resolves the LLR's spread 200-fold, with at most 4000 points over its range
    step = max(np.sqrt(pe[keep] @ llr**2) / 200, np.ptp(llr) / 4000, 1e-12)
    index = np.round(llr / step).astype(int)
    offset, width = index.min(), index.max() - index.min() + 1
    undecided = (pe[keep].sum(), po[keep].sum())  # the chance that one outcome is not decisive
    hists = tuple(np.bincount(index - offset, weights=p[keep], minlength=width) / u
                  for p, u in zip((pe, po), undecided, strict=True))
    return offset, width, hists, undecided


@lru_cache(maxsize=8)
def _llr_spectrum(N: int, r: float, sigma: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """rfft of the two LLR histograms zero-padded to ``size`` (cached: the search for the
    outcomes needed raises it to several powers n at the same size)."""
    hists = _llr_histograms(N, r, sigma)[2]
    return tuple(np.fft.rfft(h, size) for h in hists)


def outcomes_for_confidence(N: int, r: float, sigma: float, confidence: float = 0.99,
                            n_max: int = 2000) -> int:
    """Smallest number n of independent outcomes whose likelihood-ratio decision between the
    N and N - 1 steady states errs with probability <= 1 - confidence (equal priors)."""
    def error(n):
        return decision_error(N, r, sigma, n)

    low, high = 0, 1
    while error(high) > 1 - confidence:
        if high == n_max:
            raise ValueError(f"more than {n_max} outcomes needed")
        low, high = high, min(2 * high, n_max)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if error(middle) > 1 - confidence else (low, middle)
    return high
