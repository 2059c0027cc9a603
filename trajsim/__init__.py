"""trajsim: exact quantum-trajectory Monte Carlo for reservoir-engineered spin squeezing.

Implements Groszkowski, Koppenhöfer, Lau & Clerk (2021), Eq. (2) and Eq. (11), unravelled into
jump trajectories in the Dicke basis with stochastic spin loss (docs/method.md).

    result = trajsim.run("scenarios/quickstart.yaml", trajectories=100)
    result.sweep_summary          # ensemble mean and standard error per sample, with swept values
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trajsim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

# after __version__, which the run manifest records
from .api import load_scenario, open_run, run
from .errors import TrajsimError
from .results import RunResult
from .scenario import Scenario

__all__ = ["RunResult", "Scenario", "TrajsimError", "__version__", "load_scenario", "open_run",
           "run"]
