"""The one exception type of the data package.

`DataError` names where the problem is (``file.jsonl:LINE`` or a config key) and carries a short
machine-readable `reason` so that the reader's skip mode can count problems per kind. It leaves
out any recovery logic: callers decide whether to raise or skip.
"""

from __future__ import annotations

from grit_exp.errors import GritError


class DataError(GritError, ValueError):
    """Bad input data: the message names the file:line (or config key), what is wrong and what is valid."""

    def __init__(self, message: str, *, reason: str = "invalid", location: str = "") -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.reason = reason
        self.location = location
