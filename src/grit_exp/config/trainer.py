"""The `trainer` node's schema (train.yaml: steps, batches, optimizer, checkpoints) and its checks.

Left out: batch sizes against the number of processes and the group size (grit_exp.config.entries),
and what the evaluation during training does (the `eval` node, grit_exp.config.eval).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from grit_exp.errors import ConfigError


class LrScheduler(StrEnum):
    cosine = "cosine"
    constant = "constant"


class MixedPrecision(StrEnum):
    auto = "auto"  # bf16 on CUDA, fp32 on CPU (bit-reproducible)
    bf16 = "bf16"  # bf16 compute, also on CPU
    no = "no"  # fp32


@dataclass
class TrainerConfig:
    max_steps: int = 200
    prompts_per_step: int = 32  # prompts per optimizer step (global); completions = prompts x G
    micro_batch_size: int = 8  # completions per forward/backward pass
    learning_rate: float = 2e-6
    weight_decay: float = 0.0
    lr_scheduler: LrScheduler = LrScheduler.cosine
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    # Compute precision of trainable weights (always stored as fp32 masters).
    mixed_precision: MixedPrecision = MixedPrecision.auto
    eval_every: int = 50
    save_every: int = 50
    keep_last: int = 2
    resume: str = "auto"  # "auto" | "never" | a checkpoint directory
    # Supervised warm start on the rows' gold chains before RL; cached by a fingerprint, so it runs once.
    warm_start_sft_steps: int = 0
    warm_start_learning_rate: float = 1e-5  # a real model's; the CPU demo's 1e-3 is in conf/demo/cpu_train.yaml
    warm_start_batch_size: int = 32
    eval_on_start: bool = True
    # torch.use_deterministic_algorithms (with CUBLAS_WORKSPACE_CONFIG=:4096:8 on CUDA); null: on without
    # CUDA (CPU runs are bit-reproducible), off with CUDA (deterministic kernels are slower). engine.json records it.
    deterministic: bool | None = None


def check_trainer(trainer: Any) -> None:
    """ConfigError naming the trainer.* key that makes no sense on its own."""
    if trainer.keep_last < 1:
        raise ConfigError(f"trainer.keep_last={trainer.keep_last} must be >= 1")
