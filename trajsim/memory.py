"""The memory budget: the share of the physical memory that one point's cached blocks (engine)
or one work unit's arrays (checked before a run, scenario) may take."""

from __future__ import annotations

import os

#: Share of the physical memory.
MEMORY_SHARE = 0.25


def memory_budget() -> float:
    """Bytes: MEMORY_SHARE of the physical memory."""
    return MEMORY_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
