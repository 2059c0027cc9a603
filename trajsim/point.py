"""One resolved sweep point and the times it defines (sample grid, measurement schedule):
what the scenario resolves and every engine reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .model import Rates

#: Trajectories per work unit unless run.unit_size says otherwise.
UNIT_SIZE_DEFAULT = 16
#: The report's detector settings (``detection``), defaults for older manifests too.
DETECTION_DEFAULTS = {"threshold": "auto", "hold": 0.5, "smooth": 0.0, "window": 3.0,
                      "settle": 3.0}


@dataclass(frozen=True, eq=False)
class Point(Mapping):
    """One resolved sweep point: read like the mapping it is (``point["model"]["N"]``), with
    the physics it defines."""

    values: dict

    def __getitem__(self, section: str):
        return self.values[section]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def rates(self) -> Rates:
        """The rates of Eq. (11) and the twisting chi (``model``)."""
        return Rates.of(self.values["model"])

    def time_grid(self) -> np.ndarray:
        """The sample times: time.n_samples from 0 to time.t_end inclusive."""
        return time_grid(self.values)

    def detection(self) -> dict:
        """The detector settings (``detection``, defaults filled for older manifests)."""
        return {**DETECTION_DEFAULTS, **self.values["detection"]}


def time_grid(point: dict) -> np.ndarray:
    """The sample times of a point: time.n_samples from 0 to time.t_end inclusive."""
    return np.linspace(0.0, point["time"]["t_end"], point["time"]["n_samples"])


def measurement_times(point: dict) -> np.ndarray:
    """The scheduled S_y measurement times of a point up to time.t_end: period, 2 period, ...
    and the listed times, sorted, without repeats (empty without an instrument)."""
    meas, t_end = point["measurement"], point["time"]["t_end"]
    if meas["kind"] == "none":
        return np.zeros(0)
    times = list(meas["times"])
    if meas["period"] is not None:
        times += list(meas["period"] * np.arange(1, int(t_end / meas["period"]) + 1))
    times = np.unique(np.asarray(times, float))
    return times[times <= t_end]


def stop_times(point: dict) -> np.ndarray:
    """Where a trajectory stops: the sample and the measurement times, sorted, no repeats."""
    return np.union1d(time_grid(point), measurement_times(point))


def shown(value) -> str:
    """A swept value as people write it: a number to 6 digits, a mapping in YAML's flow style
    (``{distribution: gaussian, width: 0.3, groups: 2}``), a list in brackets."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, np.ndarray)):  # a list read back from Parquet: an array
        return "[" + ", ".join(map(shown, value)) + "]"
    if isinstance(value, (bool, str)) or value is None:
        return str(value)
    return f"{value:.6g}"


def sweep_label(point, keys) -> str:
    """'model.N=41, model.r=2.5' for a sweep point's swept keys."""
    return ", ".join(f"{k}={shown(point[k.split('.')[0]][k.split('.')[1]])}" for k in keys)

