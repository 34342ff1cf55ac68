"""The judge interface: requests, results, running statistics and the `Judge` protocol.

A judge scores a model's answer against the standard (reference) answer of a question, in [0, 1].
A failed judgement (the judge could not be reached, or kept replying nonsense) is reported as
`failed=True, score=None`: it is never turned into a 0 here. What the caller does with a failure
(skip the sample, count it, raise) is the caller's decision.

Left out: the judges themselves (`rules.py`, `openai_judge.py`), the cache (`cache.py`) and the
error a misconfigured judge raises (grit_exp.errors.JudgeConfigError).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class JudgeRequest:
    """One answer to judge. `question` is the full user text the model saw (suffix included, as the
    released scoring did); `prediction` is the text between <answer> and </answer>."""

    question: str
    reference: str
    prediction: str


@dataclass
class JudgeResult:
    score: float | None  # in [0, 1]; None when failed
    raw: str | None  # the judge's raw output text (for the rules judge: the rule that decided)
    failed: bool
    error: str | None = None
    cached: bool = False


@dataclass
class JudgeStats:
    """Running totals over the judge's lifetime (all `score` calls)."""

    answers: int = 0  # answers handed to score()
    requests: int = 0  # HTTP requests sent (retries included)
    cache_hits: int = 0
    deduplicated: int = 0  # answers that shared a prompt with another answer of the same call
    retries: int = 0  # requests sent again after a retryable error or a malformed reply
    malformed: int = 0  # replies whose score could not be parsed or was outside [0, 1]
    failures: int = 0  # answers recorded as failed after the retries
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@runtime_checkable
class Judge(Protocol):
    name: str  # e.g. "rules" or "openai:gpt-4o"; evaluation tables say how answers were judged
    stats: JudgeStats

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        """Judge all requests (concurrently inside); one result per request, in order."""
        ...
