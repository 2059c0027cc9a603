"""Random streams: xoshiro256** with a 256-bit state per trajectory, keyed by (seed, point,
trajectory[, stream]) through numpy's SeedSequence, so results do not depend on how
trajectories are spread over threads or processes."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


#: The least double ``_uniform`` draws.
U_MIN = 2.0**-53


@nb.njit(cache=True)
def _uniform(s):
    """xoshiro256** step; a double in [U_MIN, 1]."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return (float(result >> np.uint64(11)) + 1.0) * (1.0 / 9007199254740992.0)


def rng_states(seed: int, point: int, trajectories: np.ndarray, stream: int = 0) -> np.ndarray:
    """256-bit xoshiro states keyed by (seed, point, trajectory) through numpy's SeedSequence;
    stream 1 is the independent measurement-shot stream of the same trajectory."""
    out = np.empty((len(trajectories), 4), np.uint64)
    for row, i in enumerate(trajectories):
        key = (point, int(i)) if stream == 0 else (point, int(i), stream)
        ss = np.random.SeedSequence(entropy=seed, spawn_key=key)
        out[row] = ss.generate_state(4, np.uint64)
    return out


@nb.njit(cache=True)
def _gaussian(s):
    """A standard normal draw (Box-Muller) from two uniforms of stream s."""
    return np.sqrt(-2.0 * np.log(_uniform(s))) * np.cos(2.0 * np.pi * _uniform(s))


@nb.njit(cache=True, nogil=True)
def pick(weights, s):
    """Index drawn with probability proportional to weights (a jump channel, a Kraus operator,
    an ensemble member) from stream s."""
    cumulative = np.cumsum(weights)
    chosen = np.searchsorted(cumulative, _uniform(s) * cumulative[-1])
    return min(chosen, weights.size - 1)
