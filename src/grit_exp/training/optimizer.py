"""The optimizer every training path uses: torch's AdamW with its fused kernel (CPU and CUDA alike).

Why fused: torch's default multi-tensor ("foreach") AdamW computes each update through temporaries the
size of all trainable parameters at once, and the single-tensor loop through temporaries of the largest
one. Measured on AdamW alone over real-width tensors (1.9 GB of fp32 parameters, Qwen2.5-VL-3B's
151,936 x 2,048 embedding among them): peak above the AdamW state +2.0 GB foreach, +2.5 GB loop, +0.07 GB
fused. In the real-width GRPO step (benchmarks/README.md) the process's peak comes from elsewhere and did
not move (15.36 -> 15.32 GB). The fused kernel is also what transformers' Trainer (and so TRL) uses by
default (`adamw_torch_fused`). Its results differ from the foreach implementation's in the last bit
(1e-7), so runs from before this choice do not repeat bit for bit.
Left out: the schedule (`training/run.build_scheduler`), the engine's wrapping (accelerate / DeepSpeed).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def build_optimizer(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW (betas 0.9 / 0.999, eps 1e-8: torch's defaults, as the paper's trainer used) over `params`."""
    return torch.optim.AdamW(list(params), lr=lr, weight_decay=weight_decay, fused=True)
