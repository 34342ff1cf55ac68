"""The `rollout` group's schema (conf/rollout/*.yaml) and its checks.

`rollout.kind=vllm` is valid only in a training config: vLLM generates training's rollouts, while
evaluate and infer generate with HF (`check_rollout(..., training=False)` refuses it). Left out:
generating anything (grit_exp.rollout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from grit_exp.config.algorithm import check_truncated_is_rollout
from grit_exp.config.dataset import OnError
from grit_exp.errors import ConfigError


class RolloutKind(StrEnum):
    hf = "hf"
    vllm = "vllm"  # training only
    replay = "replay"


@dataclass
class VLLMRolloutConfig:
    """rollout=vllm: the colocated engine of each training process (grit_exp.rollout.vllm)."""

    gpu_memory_utilization: float = 0.3  # share of the GPU the engine takes (weights + KV cache); the rest trains
    kv_cache_memory_bytes: int | None = None  # an exact KV-cache size instead (required on CPU, e.g. 67108864)
    max_model_len: int | None = None  # prompt + completion tokens; null: model.max_prompt_length + rollout.max_new_tokens
    max_num_seqs: int | None = None  # sequences decoded at once; null: vLLM's default
    enforce_eager: bool = False  # true: no CUDA graphs / torch.compile (faster start, slower decode)
    sleep: bool = True  # GPU only: sleep level 2 (weights and KV cache discarded) during the update


@dataclass
class RolloutConfig:
    kind: RolloutKind = RolloutKind.hf
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    max_new_tokens: int = 1000
    stop_strings: list[str] = field(default_factory=lambda: ["</answer>"])
    # replay only
    path: str | None = None
    image_root: str | None = None
    on_error: OnError = OnError("raise")
    # vllm only
    vllm: VLLMRolloutConfig = field(default_factory=VLLMRolloutConfig)


def check_rollout_kind(rollout: Any, *, training: bool) -> None:
    """ConfigError for a kind that this entry point cannot generate with (vllm outside training)."""
    if not training and rollout.kind == RolloutKind.vllm:
        valid = ", ".join(repr(kind.value) for kind in RolloutKind if kind != RolloutKind.vllm)
        raise ConfigError(f"rollout.kind={str(rollout.kind)!r} is not valid; choose one of {valid}")


def check_rollout(cfg: Any, *, training: bool) -> None:
    """ConfigError naming the rollout.* key that makes no sense (vllm: with the model's family)."""
    rollout = cfg.rollout
    check_rollout_kind(rollout, training=training)
    check_truncated_is_rollout(cfg)  # algorithm.tis needs the sampler's log-probs (rollout=vllm)
    if rollout.kind == RolloutKind.replay and not rollout.path:
        raise ConfigError("rollout.kind=replay needs rollout.path=FILE.jsonl (recorded completions)")
    if rollout.kind != RolloutKind.vllm:
        return
    v = rollout.vllm
    if "model" in cfg and cfg.model.family != "qwen2_5_vl":
        raise ConfigError(
            f"rollout=vllm supports model.family='qwen2_5_vl' (got {str(cfg.model.family)!r}); use rollout=hf"
        )
    if not 0 < v.gpu_memory_utilization <= 1:
        raise ConfigError(f"rollout.vllm.gpu_memory_utilization={v.gpu_memory_utilization} must be in (0, 1]")
    for key in ("kv_cache_memory_bytes", "max_model_len", "max_num_seqs"):
        if getattr(v, key) is not None and getattr(v, key) < 1:
            raise ConfigError(f"rollout.vllm.{key}={getattr(v, key)} must be >= 1 (or null)")
