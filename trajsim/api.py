"""The Python entry points: load a scenario, run it, open a run directory.

They read as the command line does: load and check the scenario (``trajsim.scenario``), run its
work units (``trajsim.runner``, threads or MPI ranks), and return the results
(``trajsim.results.RunResult``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from . import scenario
from .errors import TrajsimError
from .results import RunResult
from .scenario import Scenario


def load_scenario(source, overrides: Mapping | Iterable | None = None) -> Scenario:
    """Read and check a scenario, with every default filled and its sweep expanded.

    Parameters
    ----------
    source : str, Path, dict or Scenario
        A scenario YAML file, the same content as a mapping (NumPy numbers and arrays in it,
        or in ``overrides``, read as the numbers and lists they hold), or a loaded scenario.
    overrides : mapping or iterable, optional
        Values to change, as ``{"model.r": 2.0, "sweep.model.N": [40, 41]}``, ``(key, value)``
        pairs, ``"key=value"`` strings (the command line's ``--set``) or one such string. A value for a swept key
        replaces its sweep axis.

    Returns
    -------
    Scenario
        ``.resolved`` (the full scenario), ``.points`` (one resolved mapping per sweep point),
        ``.swept`` and ``.hash()``.

    Raises
    ------
    trajsim.TrajsimError
        Bad input; the message is one line naming the key and what is allowed.
    """
    if isinstance(overrides, str):  # one "key=value" string
        overrides = [overrides]
    pairs = overrides.items() if isinstance(overrides, Mapping) else overrides or ()
    parsed = [scenario.parse_override(item) if isinstance(item, str) else tuple(item)
              for item in pairs]
    if isinstance(source, Scenario):
        if not parsed:
            return source
        source = source.resolved
    return scenario.load(source, parsed)


def run(source, out=None, *, trajectories: int | None = None, seed: int | None = None,
        threads: int | None = None, resume: bool = False, progress: bool | None = None,
        overrides: Mapping | Iterable | None = None) -> RunResult:
    """Simulate a scenario's jump trajectories and return its results.

    Parameters
    ----------
    source : str, Path, dict or Scenario
        The scenario (see ``load_scenario``).
    out : str or Path, optional
        The run directory: new, empty, or holding this scenario's run (with ``resume``).
        None runs into a temporary directory that lives as long as the returned result.
    trajectories, seed : int, optional
        Override ``run.trajectories`` and ``run.seed``.
    threads : int, optional
        Worker threads, >= 1 (default: every core). Under mpirun each rank uses one.
    resume : bool
        Continue the run in ``out``: finished work units are kept, missing or damaged ones
        computed.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    overrides : mapping or iterable, optional
        Other values to change (see ``load_scenario``).

    Returns
    -------
    RunResult
        ``.summary``, ``.sweep_summary``, ``.points``, ``.trajectories``, ``.events``,
        ``.j_distribution``, ``.manifest`` and ``.report()``.

    Raises
    ------
    trajsim.TrajsimError
        Bad input, or an output directory that cannot take this run.
    """
    whole = isinstance(threads, int | np.integer) and not isinstance(threads, bool)
    if threads is not None and not (whole and threads >= 1):
        raise TrajsimError(f"threads: {threads!r} is not allowed; give a whole number >= 1 "
                           "(or None: every core)")
    threads = None if threads is None else int(threads)
    extra = dict(overrides.items() if isinstance(overrides, Mapping) else
                 (scenario.parse_override(o) if isinstance(o, str) else o for o in overrides or ()))
    if trajectories is not None:
        extra["run.trajectories"] = trajectories
    if seed is not None:
        extra["run.seed"] = seed
    from . import runner  # the kernels load here, not on import trajsim

    loaded = load_scenario(source, extra)
    keep_alive = None
    if out is None:
        keep_alive = tempfile.TemporaryDirectory(prefix="trajsim-")
        out = Path(keep_alive.name) / "run"
    directory = runner.run(loaded, out, resume=resume, threads=threads, progress=progress)
    return RunResult(directory.path, _keep_alive=keep_alive)


def open_run(path) -> RunResult:
    """Open a run directory written by ``run``, ``trajsim run`` or ``mpirun ... trajsim run``.

    Parameters
    ----------
    path : str or Path
        The run directory.

    Returns
    -------
    RunResult

    Raises
    ------
    trajsim.TrajsimError
        Not a run directory, or its manifest is damaged.
    """
    return RunResult(path)
