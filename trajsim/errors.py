"""The one error base class for what a user can fix, and the exit status of any failure.

``TrajsimError`` and its subclasses carry a one-line message for the user (bad scenario input,
an output directory that cannot be used).  The command line prints those, and file-system
``OSError``s, as one line with exit status 2; anything else is a bug: a traceback and status 1.
"""

from __future__ import annotations

import unicodedata

#: Longest message shown; a longer one (say, quoting a huge value) is cut in the middle.
MAX_MESSAGE = 400


def printable(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` safe for a terminal: control and format characters (NUL, line breaks,
    right-to-left overrides, ...) shown as escapes, and cut to ``limit`` characters."""
    text = "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
                   else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in str(text))
    if len(text) > limit:
        half = (limit - 5) // 2
        text = f"{text[:half]} ... {text[-half:]}"
    return text


class TrajsimError(Exception):
    """Something the user can fix; the message is one line naming what and how (control
    characters in it, say from a quoted key, are shown escaped; ``printable``)."""

    def __init__(self, message: str):
        super().__init__(printable(message))


class ScenarioError(TrajsimError):
    """Bad scenario input; the message is one line for the user."""


def exit_status(err: BaseException) -> int:
    """2 for the user's errors (and the file system's), 130 for an interrupt, 1 for a bug."""
    if isinstance(err, KeyboardInterrupt):
        return 130
    return 2 if isinstance(err, (TrajsimError, OSError)) else 1
