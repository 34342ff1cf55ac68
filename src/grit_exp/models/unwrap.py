"""The transformers model inside the wrappers that training puts around it (PEFT, DDP, DeepSpeed), and whether
a forward may keep its KV cache. Kept apart from `models.base` so that the adapter and the zoom-turn
log-probs (`models.zoom_logprobs`) both use them without importing each other.

Left out: building or loading models (`models.base`, `models.tiny`).
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel


def pretrained_model(model: torch.nn.Module) -> PreTrainedModel:
    """The transformers model inside a PEFT, DDP or DeepSpeed wrapper (or the model itself)."""
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module
    raise TypeError(f"{type(model).__name__} holds no transformers model")


def can_keep_cache(model: torch.nn.Module) -> bool:
    """transformers' checkpointed layers drop the KV cache in a training forward with gradients."""
    inner = pretrained_model(model)
    return not (torch.is_grad_enabled() and inner.training and inner.is_activation_checkpointing)
