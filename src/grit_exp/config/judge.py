"""The `judge` group's schema (conf/judge/*.yaml), its checks, and the judge presets.

`kind`, `api_type` and `score_parser` are enums checked by OmegaConf at compose time; `check_judge`
checks the numbers and that `judge.api_key` is null or `${oc.env:VAR}` (grit_exp.api_keys refuses
anything else, never echoing the value).

Presets (`JUDGE_PRESETS`; the settings in which the paper's judge and the released call differ):
`paper` (conf/judge/openai.yaml): GPT-4o as the paper names it, with what the paper leaves open set
for repeatable verdicts: temperature 0, max_tokens 64, the tolerant score parser (`parse_score`).
`code` (conf/judge/openai_code.yaml): the released call: no temperature and no max_tokens in the
request (the API's defaults) and the released parser (`parse_score_released`: any reply it cannot
read scores 0). `judge_preset` names the preset a judge node matches ("custom" when none, "rules"
for the offline judge), from its values, so a label never claims settings that were overridden.
Left out: building a judge (grit_exp.judge.factory).
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


class ScoreParser(StrEnum):
    tolerant = "tolerant"  # grit_exp.judge.prompt.parse_score: unreadable -> asked again, then a failure
    released = "released"  # parse_score_released: the released parser, unreadable -> 0 (never asked again)


# preset -> the judge settings that define it (what the paper's judge and the released call differ in)
JUDGE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"temperature": 0.0, "max_tokens": 64, "score_parser": "tolerant"},
    "code": {"temperature": None, "max_tokens": None, "score_parser": "released"},
}


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
    # null: not sent (the API's default, as the released call); see JUDGE_PRESETS
    temperature: float | None = 0.0
    max_tokens: int | None = 64  # the reply is "{score: <score>}"; room for a short preamble. null: not sent
    score_parser: ScoreParser = ScoreParser.tolerant
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
        ("temperature", judge.temperature is None or judge.temperature >= 0, ">= 0 or null (not sent)"),
        ("max_tokens", judge.max_tokens is None or judge.max_tokens >= 1, ">= 1 or null (not sent)"),
    )
    for key, ok, valid in checks:
        if not ok:
            raise ConfigError(f"judge.{key}={getattr(judge, key)!r} must be {valid}")


def judge_settings(judge: Any) -> dict[str, Any]:
    """The settings of a judge node (a config node or a saved config's dict) that decide its verdicts besides
    the model: {"preset", "temperature", "max_tokens", "score_parser"} ({"preset": "rules"} for the offline
    judge). Recorded in metrics.json `_meta`; a missing key takes the schema's default."""
    defaults = JudgeConfig()

    def get(key: str) -> Any:
        value = judge.get(key, getattr(defaults, key)) if hasattr(judge, "get") else getattr(judge, key)
        return getattr(value, "value", value)  # an enum member -> its value

    if str(get("kind")) == "rules":
        return {"preset": "rules"}
    temperature, max_tokens = get("temperature"), get("max_tokens")
    values = {
        "temperature": None if temperature is None else float(temperature),
        "max_tokens": None if max_tokens is None else int(max_tokens),
        "score_parser": str(get("score_parser")),
    }
    preset = next((name for name, preset in JUDGE_PRESETS.items() if preset == values), "custom")
    return {"preset": preset, **values}
