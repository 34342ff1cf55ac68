"""Every error class of the toolkit, and the plain-text helpers its entry points report them with.

`GritError` is bad input that the user can fix: a config value (`ConfigError`), a data or replay
file (`DataError`), the judge's settings or endpoint (`JudgeConfigError`), a literal key
(`LiteralSecretError`), a config that cannot be composed (`PreflightError`). Its message names the
key or file:line and what would be valid. Any other exception is a bug or a failure of the
environment and keeps its traceback.

Left out: the checks that raise these (config/, data/, judge/, api_keys.py) and reporting them to a
person (grit_exp.preflight: one line on stderr and in the run's log, exit code `EXIT_USER_ERROR`).
This module imports nothing of the package, so every module can import it.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class GritError(Exception):
    """Bad input the user can fix; the message names the config key or file:line and what is valid."""


class ConfigError(GritError, ValueError):
    """A composed config is well-typed but makes no sense; the message names the key."""


class PreflightError(GritError):
    """The composed config cannot run (or be shown); the message names the key or override."""


class LiteralSecretError(GritError, ValueError):
    """A key-like setting holds a literal value instead of null or ${oc.env:VAR}."""


class JudgeConfigError(GritError, RuntimeError):
    """The judge cannot work as configured (no credentials, endpoint rejects the key, unknown model)."""


class DataError(GritError, ValueError):
    """Bad input data: the message names the file:line (or config key), what is wrong and what is valid.

    `reason` is a short machine-readable kind, so that the reader's skip mode can count problems per
    kind; callers decide whether to raise or skip."""

    def __init__(self, message: str, *, reason: str = "invalid", location: str = "") -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.reason = reason
        self.location = location


def one_line(message: str) -> str:
    """`message` on one line (a person reads the first line; the log keeps the same text)."""
    return " ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())
