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


class ImportanceSamplingMode(StrEnum):
    off = "off"  # the paper's recipe
    token_truncate = "token_truncate"  # per-token weight min(exp(logp_old - logp_sampler), clip_max)
    token_mask = "token_mask"  # per-token weight, 0 outside [clip_min, clip_max]
    sequence_truncate = "sequence_truncate"  # one weight per completion (exponent summed over its tokens), truncated
    sequence_mask = "sequence_mask"  # ... masked (TRL 1.16's default mode, with clip_max 3)


@dataclass
class TruncatedISConfig:
    """Correction for the sampler / trainer mismatch (grit_exp.algorithm.losses.importance_sampling_weights):
    with rollout=vllm the tokens come from vLLM's kernels, the loss scores them with the training model's;
    each token's policy loss is weighted by exp(logp_old - logp_sampler), truncated or masked at clip_max.
    Needs the sampler's log-probs: rollout=vllm only (rollout=hf samples from the training model itself).
    The sampler's log-probs are of the distribution it sampled (vLLM's processed log-probs, as TRL reads
    them): with rollout.top_k / top_p truncating it, the weight also carries the truncation (the trainer
    scores the whole softmax), close to 1 where the kept tokens hold nearly all the mass."""

    mode: ImportanceSamplingMode = ImportanceSamplingMode.off
    clip_max: float = 2.0  # C: TRL's original default and the TIS paper's
    clip_min: float | None = None  # lower bound (truncate: clamp; mask: zero below); null: none


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
    tis: TruncatedISConfig = field(default_factory=TruncatedISConfig)  # vLLM sampler correction; off in the paper


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
    check_truncated_is(algorithm)
    dynamic = algorithm.dynamic_sampling
    if dynamic.max_rounds < 1:
        raise ConfigError(f"algorithm.dynamic_sampling.max_rounds={dynamic.max_rounds} must be >= 1")
    if dynamic.enabled and algorithm.name == AlgorithmName.sft:
        raise ConfigError(
            "algorithm.dynamic_sampling.enabled=true filters GRPO groups by reward spread; algorithm=sft has no "
            "groups: set it false or choose algorithm=grpo, dr_grpo or dapo"
        )


def check_truncated_is(algorithm: Any) -> None:
    """ConfigError naming the algorithm.tis.* key that makes no sense within the algorithm group."""
    tis = algorithm.tis
    if tis.mode == ImportanceSamplingMode.off:
        return
    if tis.clip_max <= 0 or (tis.clip_min is not None and not 0 <= tis.clip_min < tis.clip_max):
        raise ConfigError(f"algorithm.tis.clip_max={tis.clip_max} / clip_min={tis.clip_min}: need clip_max > 0 and "
                          "0 <= clip_min < clip_max (or clip_min null)")
    if algorithm.name == AlgorithmName.sft:
        raise ConfigError(f"algorithm.tis.mode={str(tis.mode)!r} weights a policy-gradient loss; algorithm=sft has "
                          "none: set algorithm.tis.mode=off")
    if algorithm.logprob_temperature != LogprobTemperature.sampling:
        raise ConfigError(f"algorithm.tis.mode={str(tis.mode)!r} compares the trainer's log-probs with the sampler's, "
                          f"which are at the sampling temperature; algorithm.logprob_temperature="
                          f"{str(algorithm.logprob_temperature)!r} scores raw logits: set it to 'sampling' or tis off")
    if algorithm.dynamic_sampling.enabled:
        raise ConfigError(f"algorithm.tis.mode={str(tis.mode)!r} does not support algorithm.dynamic_sampling.enabled="
                          "true yet (the groups it moves between processes leave the sampler's log-probs behind)")


def check_truncated_is_rollout(cfg: Any) -> None:
    """ConfigError when algorithm.tis is on but the rollout records no sampler log-probs (only vLLM does)."""
    algorithm = getattr(cfg, "algorithm", None)  # training configs only (a DictConfig or the typed TrainConfig)
    if algorithm is None or algorithm.tis.mode == ImportanceSamplingMode.off:
        return
    if cfg.rollout.kind != "vllm":
        raise ConfigError(f"algorithm.tis.mode={str(cfg.algorithm.tis.mode)!r} needs the sampler's log-probs, which "
                          f"only rollout=vllm records; rollout.kind={str(cfg.rollout.kind)!r} samples from the "
                          "training model itself: set algorithm.tis.mode=off or rollout=vllm")
