"""On-disk cache of judge verdicts (sqlite, stdlib), keyed by (judge identity, full prompt).

The judge identity (`verdict_key`) is everything besides the prompt that decides a verdict: the
endpoint (base URL), API type and version, the model or Azure deployment, temperature and max_tokens
(null when not sent), the judge prompt version and the score parser (judge.score_parser). A verdict of a local fake server or another model is then
never served to a run against a different endpoint.

Re-judging the same answers (a re-evaluation, a resumed run, a GRPO group with identical answers)
then costs no request. Only successful verdicts are stored: a failure is retried next time. Several
processes (e.g. one per GPU) may share one file: the database runs in WAL mode with a busy timeout,
and writes that still meet a lock are retried with a short backoff.

Verdicts of older files (table `verdicts`, keyed by the model name only) are never read: they
cannot say which endpoint gave them.

Left out: expiry and size limits (delete the file to start over), caching of failures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS judge_verdicts (
    judge_key TEXT NOT NULL,
    prompt_sha256 TEXT NOT NULL,
    prompt TEXT NOT NULL,
    score REAL NOT NULL,
    raw TEXT NOT NULL,
    created_unix REAL NOT NULL,
    PRIMARY KEY (judge_key, prompt_sha256)
)
"""
_LOCK_RETRIES = 8
_OWN_TABLES = {"judge_verdicts", "verdicts"}  # "verdicts": files of the older (model, prompt) key, never read


def prompt_digest(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def verdict_key(
    *, base_url: str, api_type: str, model: str, api_version: str | None, temperature: float | None,
    max_tokens: int | None, prompt_version: int, score_parser: str = "tolerant",
) -> str:
    """The judge identity a verdict is stored under: canonical JSON of everything but the prompt.

    A temperature / max_tokens that is not sent (None: the API's default) is JSON null, never equal to a
    value. The score parser is part of the identity; the tolerant parser's keys carry no `score_parser`
    field, so caches written before the released parser was selectable stay valid."""
    identity: dict[str, object] = {
        "base_url": base_url.rstrip("/"), "api_type": api_type, "model": model, "api_version": api_version,
        "temperature": None if temperature is None else float(temperature),
        "max_tokens": None if max_tokens is None else int(max_tokens), "prompt_version": int(prompt_version),
    }
    if score_parser != "tolerant":
        identity["score_parser"] = score_parser
    return json.dumps(identity, sort_keys=True)


class JudgeCache:
    """A sqlite file of (judge key, prompt) -> (score, raw). Thread-safe within a process."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            str(self.path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None
        )
        self._refuse_a_file_of_someone_else()
        self._with_lock_retries(lambda: self._connection.execute("PRAGMA journal_mode=WAL"))
        # WAL + NORMAL: no fsync per commit; a power cut may lose the last verdicts, never corrupt the file.
        self._with_lock_retries(lambda: self._connection.execute("PRAGMA synchronous=NORMAL"))
        self._with_lock_retries(lambda: self._connection.execute(_SCHEMA))

    def _refuse_a_file_of_someone_else(self) -> None:
        """Before anything is written: the file must be new, empty, or a verdict cache (no other tables)."""
        from grit_exp.errors import JudgeConfigError

        try:
            tables = {row[0] for row in self._with_lock_retries(
                lambda: self._connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall())}
        except sqlite3.DatabaseError:
            tables = {"(not an sqlite database)"}
        foreign = tables - _OWN_TABLES
        if foreign:
            self._connection.close()
            raise JudgeConfigError(
                f"judge.cache_path={str(self.path)!r} is not a judge verdict cache (holds {', '.join(sorted(foreign))}); "
                "it was left untouched. Point judge.cache_path at a new file (null: no cache)"
            )

    def _with_lock_retries(self, operation):  # type: ignore[no-untyped-def]
        for attempt in range(_LOCK_RETRIES):
            try:
                with self._lock:
                    return operation()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if attempt == _LOCK_RETRIES - 1:
                    raise sqlite3.OperationalError(
                        f"judge cache {self.path} stayed locked after {_LOCK_RETRIES} tries: {error}"
                    ) from error
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def get_many(self, judge_key: str, prompts: Iterable[str]) -> dict[str, tuple[float, str]]:
        """The cached (score, raw) of each prompt that has one under `judge_key` (see `verdict_key`)."""
        by_digest = {prompt_digest(prompt): prompt for prompt in prompts}
        found: dict[str, tuple[float, str]] = {}
        digests = list(by_digest)
        for start in range(0, len(digests), 500):  # stay under sqlite's host-parameter limit
            chunk = digests[start : start + 500]
            placeholders = ",".join("?" * len(chunk))
            query = (
                "SELECT prompt_sha256, prompt, score, raw FROM judge_verdicts "
                f"WHERE judge_key = ? AND prompt_sha256 IN ({placeholders})"
            )
            rows = self._with_lock_retries(
                lambda q=query, c=chunk: self._connection.execute(q, [judge_key, *c]).fetchall()
            )
            for digest, prompt, value, raw in rows:
                if by_digest[digest] == prompt:  # guard against a (practically impossible) hash collision
                    found[prompt] = (value, raw)
        return found

    def put(self, judge_key: str, prompt: str, score: float, raw: str) -> None:
        self._with_lock_retries(
            lambda: self._connection.execute(
                "INSERT OR REPLACE INTO judge_verdicts VALUES (?, ?, ?, ?, ?, ?)",
                (judge_key, prompt_digest(prompt), prompt, score, raw, time.time()),
            )
        )

    def __len__(self) -> int:
        return self._with_lock_retries(
            lambda: self._connection.execute("SELECT COUNT(*) FROM judge_verdicts").fetchone()[0]
        )

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __repr__(self) -> str:
        return f"JudgeCache({str(self.path)!r})"
