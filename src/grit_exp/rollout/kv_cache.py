"""A KV cache that writes each decode step in place instead of concatenating.

transformers' `DynamicCache` grows every layer with `torch.cat` at every decoded token: copying the
whole cache each step, O(length) work per token (17% of a tiny-model decode step here). Its
`StaticCache` writes in place but attends over the full maximum length at every step. This cache
does neither: each layer keeps a buffer with room for the prompt plus `max_new_tokens`, copies the
new keys / values into it, and hands attention a view of the filled part only, so attention sees
exactly the tensors the dynamic cache would (same values, same length: the same tokens come out).

Selecting or repeating rows (`batch_select_indices`, `batch_repeat_interleave`) keeps each row's
room, so a prompt's cache can be expanded to its completions and finished rows dropped mid-decode.
Left out: beam search and cache cropping (the decode loop uses neither; those calls fall back to a
compacted copy), sliding-window layers (none in the supported models).
"""

from __future__ import annotations

import functools

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class InPlaceLayer(DynamicLayer):
    """A `DynamicLayer` whose `update` copies into preallocated room (see the module docstring)."""

    def __init__(self, room: int):
        super().__init__()
        self.room, self.length = room, 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.device = key_states.device
            batch, heads, length, dim = key_states.shape
            self._keys = key_states.new_empty(batch, heads, length + self.room, dim)
            self._values = value_states.new_empty(batch, value_states.shape[1], length + self.room, value_states.shape[-1])
            self.length, self.is_initialized = 0, True
        end = self.length + key_states.shape[-2]
        if end > self._keys.shape[-2]:  # more than announced: grow by doubling (never on generate's path)
            self._keys = torch.cat([self._keys[..., : self.length, :], torch.empty_like(self._keys)], dim=-2)
            self._values = torch.cat([self._values[..., : self.length, :], torch.empty_like(self._values)], dim=-2)
        self._keys[..., self.length : end, :].copy_(key_states)
        self._values[..., self.length : end, :].copy_(value_states)
        self.length = end
        self.keys, self.values = self._keys[..., :end, :], self._values[..., :end, :]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def _adopt(self) -> None:
        """After an operation that replaced `keys` / `values`: make them the buffers."""
        self._keys, self._values = self.keys.contiguous(), self.values.contiguous()
        self.length = self._keys.shape[-2]

    def reset(self) -> None:
        super().reset()
        self.length = 0

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        if self.is_initialized:
            self._adopt()

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self._keys = self._keys.repeat_interleave(repeats, dim=0)
            self._values = self._values.repeat_interleave(repeats, dim=0)
            self.keys, self.values = self._keys[..., : self.length, :], self._values[..., : self.length, :]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep (or repeat) these rows, with their room: a prompt's cache expanded to its G completions,
        finished rows dropped from the decode batch (`rollout/decode.py`)."""
        if self.is_initialized:
            self._keys = self._keys.index_select(0, indices.to(self._keys.device))
            self._values = self._values.index_select(0, indices.to(self._values.device))
            self.keys, self.values = self._keys[..., : self.length, :], self._values[..., : self.length, :]

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        super().reorder_cache(beam_idx)
        self._adopt()


def in_place_cache(max_new_tokens: int) -> DynamicCache:
    """A `DynamicCache` for one `generate` call of at most `max_new_tokens` new tokens."""
    cache = DynamicCache()
    cache.layer_class_to_replicate = functools.partial(InPlaceLayer, max_new_tokens)
    return cache
