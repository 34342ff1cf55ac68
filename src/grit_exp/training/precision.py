"""Mixed precision for forward passes: bf16 autocast on CUDA when `trainer.bf16`, fp32 elsewhere.

Only forward passes run under it (generation, log-probs); losses are computed from float32
log-probs, and backward / optimizer steps run outside it. CPU runs are always fp32, so they stay
bit-reproducible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager

import torch


def forward_precision(device: torch.device, bf16: bool) -> Callable[[], AbstractContextManager]:
    """A factory of contexts for forward passes on `device`."""
    if bf16 and device.type == "cuda":
        return lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext
