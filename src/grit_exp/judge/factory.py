"""`build_judge`: a judge from the `judge` config node (checked first by grit_exp.config.judge).

The key is resolved here, from the environment only (grit_exp.api_keys), wrapped in a `SecretStr` and
registered for log redaction. The `openai` package is imported only when `judge.kind=openai`.

Left out: the judges themselves, the node's schema and checks (grit_exp.config.judge), and refusing
literal keys (grit_exp.api_keys).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from grit_exp.api_keys import (
    SecretStr,
    check_api_key_setting,
    install_log_redaction,
    raw_api_key,
    register_secret,
)
from grit_exp.config.judge import check_judge
from grit_exp.errors import ConfigError, JudgeConfigError
from grit_exp.judge.base import Judge
from grit_exp.judge.rules import RulesJudge

logger = logging.getLogger(__name__)


def _api_key_from_environment(cfg: Any) -> SecretStr:
    variable = check_api_key_setting(raw_api_key(cfg)) or (
        "AZURE_OPENAI_API_KEY" if cfg.api_type == "azure" else "OPENAI_API_KEY"
    )
    value = os.environ.get(variable)
    if not value:
        raise JudgeConfigError(
            f"judge.kind=openai needs an API key in the environment variable {variable}, which is unset or "
            "empty. Export it (a local server without authentication accepts any value, e.g. "
            f"{variable}=EMPTY), or use judge=rules for the offline judge."
        )
    register_secret(value)
    return SecretStr(value)


def build_judge(cfg: Any) -> Judge:
    """The judge described by a `judge` config node (JudgeConfig or its DictConfig)."""
    check_judge(cfg)
    if cfg.kind == "rules":
        return RulesJudge()

    from grit_exp.judge.cache import JudgeCache
    from grit_exp.judge.openai_judge import OpenAIJudge

    api_key = _api_key_from_environment(cfg)
    install_log_redaction()
    base_url = cfg.base_url
    api_version = cfg.api_version
    if cfg.api_type == "azure":
        base_url = base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        api_version = api_version or os.environ.get("OPENAI_API_VERSION")
    cache = None
    if cfg.cache_path:
        if "${" in str(cfg.cache_path):
            raise ConfigError(
                f"judge.cache_path={cfg.cache_path!r} is an unresolved interpolation: pass the judge node of a "
                "composed config (cfg.judge), or set judge.cache_path to a file (null: no cache)"
            )
        cache = JudgeCache(cfg.cache_path)
    judge = OpenAIJudge(
        model=cfg.model,
        api_key=api_key,
        base_url=base_url,
        api_type=cfg.api_type,
        api_version=api_version,
        concurrency=cfg.concurrency,
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        cache=cache,
    )
    logger.info("judge: %r", judge)
    return judge
