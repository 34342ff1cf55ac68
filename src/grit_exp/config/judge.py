"""The `judge` group's schema (conf/judge/*.yaml) and its checks.

`kind` and `api_type` are enums checked by OmegaConf at compose time; `check_judge` checks the
numbers and that `judge.api_key` is null or `${oc.env:VAR}` (grit_exp.api_keys refuses anything
else, never echoing the value). Left out: building a judge (grit_exp.judge.factory).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from grit_exp.api_keys import check_api_key_setting, raw_api_key
from grit_exp.errors import ConfigError, LiteralSecretError


class JudgeKind(StrEnum):
    rules = "rules"  # offline, deterministic
    openai = "openai"  # any OpenAI-compatible endpoint


class ApiType(StrEnum):
    openai = "openai"
    azure = "azure"


@dataclass
class JudgeConfig:
    """The answer judge (grit_exp.judge); checked by `check_judge`."""

    kind: JudgeKind = JudgeKind.rules
    base_url: str | None = None  # e.g. http://localhost:8000/v1 (vLLM); null: api.openai.com / AZURE_OPENAI_ENDPOINT
    model: str = "gpt-4o"  # for Azure: the deployment name
    # null (read OPENAI_API_KEY, or AZURE_OPENAI_API_KEY with api_type=azure) or exactly "${oc.env:VAR}".
    # A literal key is refused (grit_exp.api_keys): it would be saved in .hydra/*.yaml.
    api_key: str | None = None
    api_type: ApiType = ApiType.openai
    api_version: str | None = None  # Azure only; null: OPENAI_API_VERSION
    concurrency: int = 32  # requests in flight at once
    timeout_s: float = 60.0  # per request
    # the openai client's retries (timeouts, drops, 408/409/429/5xx; its backoff, Retry-After honoured),
    # and as many re-asks after a reply without a score
    max_retries: int = 5
    temperature: float = 0.0
    max_tokens: int = 64  # the reply is "{score: <score>}"; room for a short preamble
    cache_path: str | None = "${paths.cache_dir}/judge_cache.sqlite"  # sqlite; null: no cache


def check_judge(judge: Any) -> None:
    """ConfigError naming the judge.* key that makes no sense (never echoing a key's value).

    `kind` and `api_type` are left to the schema (OmegaConf refuses other values)."""
    try:
        check_api_key_setting(raw_api_key(judge))
    except LiteralSecretError as error:
        raise ConfigError(str(error)) from None
    checks = (
        ("concurrency", judge.concurrency >= 1, ">= 1"),
        ("timeout_s", judge.timeout_s > 0, "> 0"),
        ("max_retries", judge.max_retries >= 0, ">= 0"),
        ("temperature", judge.temperature >= 0, ">= 0"),
        ("max_tokens", judge.max_tokens >= 1, ">= 1"),
    )
    for key, ok, valid in checks:
        if not ok:
            raise ConfigError(f"judge.{key}={getattr(judge, key)!r} must be {valid}")
