"""Numba's on-disk cache, keyed on every source the compiled kernels come from.

Numba keys a cached function on the SHA-256 of its own source file only, yet a compiled function
carries the code of everything it calls: after an edit to ``kernels.py`` alone (an editable
install and a ``git pull``), ``trajectories.advance`` would load from its cache with the old
kernels inside.  This session's column-major channel matrices would then have met the old
row-major product.  The locators below give every function of ``trajsim.compiled`` one stamp,
the SHA-256 of all of the engine's modules and ``dicke.py`` (whose ``clebsch_gordan`` is
compiled too), so that any change to any of them recompiles everything.  Cache files stay where
Numba puts them (``__pycache__``, or ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from numba.core import caching

ENGINE = Path(__file__).resolve().parent
SOURCES = sorted(ENGINE.glob("*.py")) + [ENGINE.parent / "dicke.py"]
DIGEST = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in SOURCES)).hexdigest()


class _EngineStamp:
    """The stamp of every engine function: the digest of all the sources (module docstring)."""

    def get_source_stamp(self):
        return ("trajsim.compiled", DIGEST)

    @classmethod
    def from_function(cls, py_func, py_file):
        if Path(py_file).resolve().parent != ENGINE:
            return None
        return super().from_function(py_func, py_file)


class EngineUserDirLocator(_EngineStamp, caching.UserProvidedCacheLocator):
    """NUMBA_CACHE_DIR set: Numba's directory, the engine's stamp."""


class EngineInTreeLocator(_EngineStamp, caching.InTreeCacheLocator):
    """The package's __pycache__, the engine's stamp."""


def _register() -> None:
    """Put the engine's locators first (once)."""
    classes = caching.CacheImpl._locator_classes
    for locator in (EngineInTreeLocator, EngineUserDirLocator):
        if locator not in classes:
            classes.insert(0, locator)


_register()  # on import: the package imports this module before any module with kernels
