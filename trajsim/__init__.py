"""trajsim: exact quantum-trajectory Monte Carlo for reservoir-engineered spin squeezing.

Implements Groszkowski, Koppenhöfer, Lau & Clerk (2021), Eq. (2) and Eq. (11), unravelled into
jump trajectories in the Dicke basis with stochastic spin loss.  See ``physics.md`` for the model.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trajsim")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"
