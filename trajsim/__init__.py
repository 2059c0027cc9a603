"""trajsim: exact quantum-trajectory Monte Carlo for reservoir-engineered spin squeezing.

Implements Groszkowski, Koppenhöfer, Lau & Clerk (2021), Eq. (2) and Eq. (11), unravelled into
jump trajectories in the Dicke basis with stochastic spin loss (docs/method.md).

    result = trajsim.run("scenarios/quickstart.yaml", trajectories=100)
    result.sweep_summary          # ensemble mean and standard error per sample, with swept values
"""

import sys as _sys
from importlib import import_module as _import
from importlib.metadata import PackageNotFoundError, version
from pkgutil import iter_modules as _modules

try:
    __version__ = version("trajsim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

# after __version__, which the run manifest records
from .api import load_scenario, open_run, run
from .errors import TrajsimError
from .results import RunResult
from .scenario import Scenario

# The import paths from before the engines package (trajsim.engine and its modules,
# trajsim.record_engine, trajsim.hybrid_engine), kept for users' scripts: the same module
# objects under their old names, never second copies.
from . import compiled, engines  # noqa: E402  (after the public API above)

_OLD_NAMES = {"engine": compiled, "record_engine": engines.record,
              "hybrid_engine": engines.hybrid}
_OLD_NAMES.update({f"engine.{m.name}": _import(f"{__name__}.compiled.{m.name}")
                   for m in _modules(compiled.__path__)})
for _old, _module in _OLD_NAMES.items():
    _sys.modules[f"{__name__}.{_old}"] = _module
engine, record_engine, hybrid_engine = compiled, engines.record, engines.hybrid

__all__ = ["RunResult", "Scenario", "TrajsimError", "__version__", "load_scenario", "open_run",
           "run"]
