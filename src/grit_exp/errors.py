"""The toolkit's own error type, and how an entry point reports it to a person.

`GritError` is bad input that the user can fix: a config value (`ConfigError`), a data or replay
file (`DataError`), a model path, the judge's settings (`JudgeConfigError`), a literal key
(`LiteralSecretError`). Its message names the key or file:line and what would be valid.
`reported_user_errors` turns one into a single line on stderr (with the run's log file, when there
is one), writes the same line into that log file, and exits with `EXIT_USER_ERROR` (2). Any other
exception is a bug or a failure of the environment and keeps its traceback. `HYDRA_FULL_ERROR=1`
(Hydra's own switch for complete stack traces) shows the traceback of a `GritError` too.

Left out: the checks themselves (config.py, data/, judge/); composing configs (preflight.py).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_USER_ERROR = 2

log = logging.getLogger("grit_exp")


class GritError(Exception):
    """Bad input the user can fix; the message names the config key or file:line and what is valid."""


def one_line(message: str) -> str:
    """`message` on one line (a person reads the first line; the log keeps the same text)."""
    return " ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())


def run_log_files() -> list[Path]:
    """The log files the root logger writes (Hydra's `<run dir>/<job name>.log` inside a task)."""
    return [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def report_user_error(error: BaseException, entry: str) -> None:
    """Write the error as one line into the run's log file(s) and onto stderr (naming the log file)."""
    from grit_exp.api_keys import redact  # light: stdlib + omegaconf

    message = redact(one_line(str(error)))
    root = logging.getLogger()
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()
    logs = run_log_files()
    where = f"  (log: {logs[0]})" if logs else ""
    sys.stderr.write(f"grit_exp.{entry}: error: {message}{where}\n")
    sys.stderr.flush()


@contextmanager
def reported_user_errors(entry: str) -> Iterator[None]:
    """Inside an entry point: a `GritError` becomes one line and exit code 2; anything else propagates."""
    try:
        yield
    except GritError as error:
        report_user_error(error, entry)
        if full_tracebacks() or in_sweep_job():
            raise  # a sweep job: the sweeper records the point as failed and goes on with the others
        raise SystemExit(EXIT_USER_ERROR) from None


def in_sweep_job() -> bool:
    """True inside one job of a Hydra multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except ImportError:
        return False


def full_tracebacks() -> bool:
    """Hydra's switch: HYDRA_FULL_ERROR=1 asks for complete stack traces."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"
