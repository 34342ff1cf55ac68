"""The `algorithm` group's schema (conf/algorithm/*.yaml) and its checks.

Left out: checks that need other groups (micro-batches per process: grit_exp.config.entries) and
the algorithms themselves (grit_exp.algorithm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from grit_exp.errors import ConfigError


class AlgorithmName(StrEnum):
    grpo = "grpo"
    dr_grpo = "dr_grpo"
    dapo = "dapo"
    sft = "sft"


class ScaleRewards(StrEnum):
    group = "group"
    batch = "batch"
    none = "none"


class LossAggregation(StrEnum):
    seq_mean_token_mean = "seq_mean_token_mean"  # released GRIT code / GRPO
    token_mean = "token_mean"  # DAPO
    seq_mean_token_sum_norm = "seq_mean_token_sum_norm"  # Dr. GRPO


class LogprobTemperature(StrEnum):
    sampling = "sampling"
    one = "one"


@dataclass
class DynamicSamplingConfig:
    """DAPO's dynamic sampling (grit_exp.algorithm.dynamic_sampling): groups whose G rewards are all equal
    (zero advantage, no gradient) are dropped, and further rounds of trainer.prompts_per_step prompts are
    drawn and rolled out until the step has trainer.prompts_per_step groups with reward spread or
    max_rounds rounds were generated; then it trains on the groups it has. Off in the paper's recipe."""

    enabled: bool = False
    max_rounds: int = 4  # generation rounds per step at most (1: only drop, never draw more prompts)


@dataclass
class AlgorithmConfig:
    name: AlgorithmName = MISSING
    num_generations: int = 4
    beta: float = 0.01
    num_iterations: int = 1
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    scale_rewards: ScaleRewards = ScaleRewards.group
    advantage_eps: float = 1e-4
    loss_aggregation: LossAggregation = LossAggregation.seq_mean_token_mean
    # Temperature of the log-probs in the ratio and KL: "sampling" divides logits by rollout.temperature
    # (the policy that was sampled, as TRL does); "one" uses raw logits (the released GRIT code).
    logprob_temperature: LogprobTemperature = LogprobTemperature.sampling
    dynamic_sampling: DynamicSamplingConfig = field(default_factory=DynamicSamplingConfig)


def check_group_size(algorithm: Any) -> None:
    """ConfigError when GRPO's groups are too small to have an advantage."""
    if algorithm.name != AlgorithmName.sft and algorithm.num_generations < 2:
        raise ConfigError(
            f"algorithm.num_generations={algorithm.num_generations} must be >= 2: group-relative "
            "advantages of a single completion are always 0"
        )


def check_algorithm(algorithm: Any) -> None:
    """ConfigError naming the algorithm.* key that makes no sense (the group size: `check_group_size`)."""
    if algorithm.beta < 0:
        raise ConfigError(f"algorithm.beta={algorithm.beta} must be >= 0")
    if algorithm.num_iterations < 1:
        raise ConfigError(f"algorithm.num_iterations={algorithm.num_iterations} must be >= 1")
    dynamic = algorithm.dynamic_sampling
    if dynamic.max_rounds < 1:
        raise ConfigError(f"algorithm.dynamic_sampling.max_rounds={dynamic.max_rounds} must be >= 1")
    if dynamic.enabled and algorithm.name == AlgorithmName.sft:
        raise ConfigError(
            "algorithm.dynamic_sampling.enabled=true filters GRPO groups by reward spread; algorithm=sft has no "
            "groups: set it false or choose algorithm=grpo, dr_grpo or dapo"
        )
