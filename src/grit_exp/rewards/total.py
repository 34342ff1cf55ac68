"""The weighted total of the configured reward terms over one batch, with per-term and per-dataset means.

`compute_rewards(cfg, completions, rows, ctx)` computes every term named in ``reward.weights``
(weight-0 terms too: they are logged), sums them with their weights, and averages each term and the
total per dataset. The judge is called ONCE per batch: the requests of all judge terms (only
completions holding ``<answer>``) go to ``ctx.judge.score`` in one list. A failed judgement counts 0
in the reward and is counted in ``judge_failures``. ``reward.counting_datasets`` overrides
``ctx.counting_datasets``.

`check_reward_config(cfg)` validates term names and every ``reward.options.<term>.<key>`` without
computing anything, for config validation before a model is loaded.

Left out: advantages and anything with tensors (`grit_exp.policy`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grit_exp.data.schema import GritRow
from grit_exp.rewards.answer_terms import ask_judge, judge_result_score
from grit_exp.rewards.registry import (
    JUDGE_REQUEST_BUILDERS,
    REWARD_TERMS,
    RewardContext,
    RewardOptionError,
    check_term_options,
)


@dataclass
class RewardBreakdown:
    per_term: dict[str, list[float]]  # term -> one value per completion (unweighted)
    total: list[float]  # sum over terms of weight x value
    per_dataset: dict[str, dict[str, float]]  # dataset -> {term: mean, ..., "total": mean}
    weights: dict[str, float]
    judge_requests: int = 0  # answers sent to the judge in this batch
    judge_failures: int = 0  # of those, failed judgements (scored 0)
    judge_cached: int = 0  # of those, answered from the judge's cache
    # raw judge score per completion (not binarised); None where not judged or failed
    judge_scores: list[float | None] = field(default_factory=list)

    def means(self) -> dict[str, float]:
        """Batch means: {"total": ..., "<term>": ...} (for train/reward and train/reward/<term>)."""
        n = max(1, len(self.total))
        out = {"total": sum(self.total) / n}
        out.update({term: sum(values) / n for term, values in self.per_term.items()})
        return out


def _plain(node: Any, where: str) -> dict[str, Any]:
    """A DictConfig or mapping as a plain dict (options nested one level)."""
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(node, DictConfig):
            node = OmegaConf.to_container(node, resolve=True)
    except ImportError:  # omegaconf is a dependency; plain dicts work without it
        pass
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise RewardOptionError(f"{where} must be a mapping, got {node!r}")
    return dict(node)


def _read_config(cfg: Any) -> tuple[dict[str, float], dict[str, dict[str, Any]], list[str] | None]:
    weights = _plain(cfg.weights, "reward.weights")
    options = {
        term: _plain(o, f"reward.options.{term}") for term, o in _plain(cfg.options, "reward.options").items()
    }
    for term, weight in weights.items():
        if term not in REWARD_TERMS:
            raise RewardOptionError(
                f"reward.weights.{term}: unknown reward term; registered terms: {', '.join(sorted(REWARD_TERMS))}"
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise RewardOptionError(f"reward.weights.{term}={weight!r} must be a finite number")
    for term in options:
        if term not in weights:
            raise RewardOptionError(
                f"reward.options.{term} is set but {term!r} has no weight in reward.weights "
                f"(terms with weights: {', '.join(sorted(weights))}); add reward.weights.{term} or drop the options"
            )
    counting = getattr(cfg, "counting_datasets", None)
    return (
        {t: float(w) for t, w in weights.items()},
        options,
        (list(counting) if counting is not None else None),
    )


NEEDS_TERM = {"tool_bonus": "judge_accuracy"}  # term -> the term whose results it reads


def check_reward_config(cfg: Any) -> None:
    """Raise RewardOptionError for an unknown term, a bad weight or a bad ``reward.options.<term>.<key>``."""
    weights, options, _ = _read_config(cfg)
    for term in weights:
        check_term_options(term, options.get(term, {}))
    for term, needs in NEEDS_TERM.items():
        if term in weights and needs not in weights:
            raise RewardOptionError(
                f"reward.weights.{term} reads the verdicts of reward term {needs!r}: add reward.weights.{needs} "
                "(weight 0 computes it without adding it to the total)"
            )


def compute_rewards(
    cfg: Any, completions: list[str], rows: list[GritRow], ctx: RewardContext
) -> RewardBreakdown:
    """All configured terms for one batch, their weighted total and per-dataset means."""
    weights, options, counting = _read_config(cfg)
    n = len(completions)
    if len(rows) != n:
        raise ValueError(f"compute_rewards: {n} completions but {len(rows)} rows")
    for name, values in (("prompts", ctx.prompts), ("token_ids", ctx.token_ids), ("zoom_calls", ctx.zoom_calls)):
        if values is not None and len(values) != n:
            raise ValueError(
                f"compute_rewards: RewardContext.{name} has {len(values)} entries for {n} completions"
            )
    if counting is not None:
        ctx = dataclasses.replace(ctx, counting_datasets=counting)

    # one judge call for all judge terms
    judge_terms = [t for t in weights if t in JUDGE_REQUEST_BUILDERS]
    requests = {
        t: JUDGE_REQUEST_BUILDERS[t](completions, rows, ctx, **options.get(t, {})) for t in judge_terms
    }
    flat = [r for t in judge_terms for r in requests[t]]
    flat_results = ask_judge(ctx.judge, flat)
    judge_results = dict(ctx.judge_results)
    for k, t in enumerate(judge_terms):
        judge_results[t] = flat_results[k * n : (k + 1) * n]
    ctx = dataclasses.replace(ctx, judge_results=judge_results)

    per_term: dict[str, list[float]] = {}
    for term in weights:
        values = [float(v) for v in REWARD_TERMS[term](completions, rows, ctx, **options.get(term, {}))]
        if len(values) != n:
            raise ValueError(f"reward term {term!r} returned {len(values)} values for {n} completions")
        bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
        if bad:
            raise ValueError(f"reward term {term!r} returned non-finite values at completions {bad[:10]}")
        per_term[term] = values
    total = [sum(weights[t] * per_term[t][i] for t in weights) for i in range(n)]

    per_dataset: dict[str, dict[str, float]] = {}
    for dataset in dict.fromkeys(row.dataset for row in rows):
        index = [i for i, row in enumerate(rows) if row.dataset == dataset]
        means = {t: sum(per_term[t][i] for i in index) / len(index) for t in weights}
        means["total"] = sum(total[i] for i in index) / len(index)
        per_dataset[dataset] = means

    asked = [r for r in flat_results if r is not None]
    first = judge_results.get(judge_terms[0]) if judge_terms else None
    return RewardBreakdown(
        per_term=per_term,
        total=total,
        per_dataset=per_dataset,
        weights=weights,
        judge_requests=len(asked),
        judge_failures=sum(1 for r in asked if judge_result_score(r) is None),
        judge_cached=sum(1 for r in asked if getattr(r, "cached", False)),
        judge_scores=[judge_result_score(r) for r in first] if first is not None else [None] * n,
    )
