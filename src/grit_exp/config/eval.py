"""The `eval` node's schema, shared by training (every trainer.eval_every steps) and evaluation
(conf/eval.yaml), and its checks.

Left out: when training evaluates (trainer.eval_every, trainer.eval_on_start) and evaluating itself
(grit_exp.evaluation; `EvalOptions` reads this node).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from grit_exp.errors import ConfigError


class UntaggedAnswer(StrEnum):
    """ACC of a response without `<answer>` when the prompt asks for one (prompt.judged_answer=tagged)."""

    zero = "zero"  # scores 0, the judge is not asked: the released scoring (the default)
    judge_whole_completion = "judge_whole_completion"  # the judge scores the whole completion (lenient)


@dataclass
class EvalSettingsConfig:
    batch_size: int = 8  # rows per greedy generate call; batches are dealt round-robin to processes
    num_pictures: int = 16  # samples drawn (model boxes + GT boxes) and shown in report.html
    # weights to evaluate (e.g. <run>/checkpoints/step_N/model); null: model.path. Evaluation only:
    # training evaluates the weights it trains.
    checkpoint: str | None = None
    # also K sampled completions per row at rollout.temperature: eval/<dataset>/reward_sampled (the
    # reward GRPO optimises; grit_exp.evaluation.sampled_reward); 0: greedy evaluation only
    sampled_k: int = 0
    # The paper's "Vision-Language Reasoning Cross-Modal Correlation": a vision judge picks which of two
    # images carries the boxes that match the reasoning. Needs judge.kind=openai (a vision model).
    consistency: bool = False
    consistency_repeats: int = 3  # reported as mean +- std over the repeats
    # a response without <answer> under a prompt that asks for one (every prompt but direct, whose
    # prompt.judged_answer=whole_response): zero (released scoring) or judge_whole_completion
    untagged_answer: UntaggedAnswer = UntaggedAnswer.zero


def check_eval(settings: Any) -> None:
    """ConfigError naming the eval.* key that makes no sense."""
    if settings.batch_size < 1:
        raise ConfigError(f"eval.batch_size={settings.batch_size} must be >= 1")
    if settings.num_pictures < 0:
        raise ConfigError(f"eval.num_pictures={settings.num_pictures} must be >= 0")
    if settings.sampled_k < 0:
        raise ConfigError(f"eval.sampled_k={settings.sampled_k} must be >= 0 (0: no sampled evaluation)")
    if settings.consistency_repeats < 1:
        raise ConfigError(f"eval.consistency_repeats={settings.consistency_repeats} must be >= 1")
