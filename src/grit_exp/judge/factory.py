"""`build_judge`: a judge from the `judge` config node (checked first by grit_exp.config.judge).

The key is resolved here, from the environment only (grit_exp.api_keys), wrapped in a `SecretStr` and
registered for log redaction. The `openai` package is imported only when `judge.kind=openai`.

Left out: the judges themselves, the node's schema and checks (grit_exp.config.judge), and refusing
literal keys (grit_exp.api_keys).
"""

from __future__ import annotations

import logging
from typing import Any

from grit_exp.api_keys import install_log_redaction
from grit_exp.config.judge import check_judge
from grit_exp.errors import ConfigError
from grit_exp.judge.base import Judge
from grit_exp.judge.rules import RulesJudge

logger = logging.getLogger(__name__)


def build_judge(cfg: Any) -> Judge:
    """The judge described by a `judge` config node (JudgeConfig or its DictConfig)."""
    check_judge(cfg)
    if cfg.kind == "rules":
        return RulesJudge()

    from grit_exp.judge.cache import JudgeCache
    from grit_exp.judge.openai_client import endpoint_of
    from grit_exp.judge.openai_judge import OpenAIJudge

    api_key, base_url, api_version = endpoint_of(cfg)
    install_log_redaction()
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
        score_parser=str(cfg.score_parser),
        cache=cache,
    )
    logger.info("judge: %r", judge)
    return judge
