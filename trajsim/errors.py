"""The one error base class for what a user can fix, and the exit status of any failure.

``TrajsimError`` and its subclasses carry a one-line message for the user (bad scenario input,
an output directory that cannot be used).  The command line prints those, and file-system
``OSError``s, as one line with exit status 2; anything else is a bug: a traceback and status 1.
"""

from __future__ import annotations


class TrajsimError(Exception):
    """Something the user can fix; the message is one line naming what and how (line breaks
    in it, say from a quoted key, are shown escaped)."""

    def __init__(self, message: str):
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


def exit_status(err: BaseException) -> int:
    """2 for the user's errors (and the file system's), 130 for an interrupt, 1 for a bug."""
    if isinstance(err, KeyboardInterrupt):
        return 130
    return 2 if isinstance(err, (TrajsimError, OSError)) else 1
