"""What an optimizer step (GRPO or SFT) is given: the built modules, and how it cuts a batch into micro-batches.

Both steps take a `StepModules` from `training/run.py` and run their update in micro-batches of
`trainer.micro_batch_size`. Left out: building the modules (`training/run.py`) and the steps themselves
(`algorithm/grpo.py`, `algorithm/sft.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from grit_exp.cluster.engine import TrainingEngine
from grit_exp.models.base import ModelAdapter
from grit_exp.rollout.types import RolloutEngine


@dataclass
class StepModules:
    adapter: ModelAdapter
    policy: torch.nn.Module  # as prepared by the engine (DDP / DeepSpeed wrapper, or the bare model)
    reference: torch.nn.Module | None  # None: beta == 0, or LoRA (the base with adapters disabled)
    rollout: RolloutEngine  # hf or vllm (rollout.kind)
    judge: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    cfg: Any
    engine: TrainingEngine


def micro_batches(n: int, size: int) -> list[slice]:
    """Consecutive slices of at most `size` out of `n` items."""
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
