"""HF `generate` rollouts: G sampled completions per prompt, images processed once per prompt.

Returns token ids, a mask of the real completion tokens (through the first EOS), decoded texts and
the prompts' image geometry, trimmed to the longest real completion of the batch (never padded to
max_new_tokens). It does not score or train.

`generate` runs with a `GenerationConfig` built from the config tree (`rollout/generation.py`) and
the adapter's token ids, and while it runs the model's own `generation_config` (read from the
checkpoint's generation_config.json) is set aside: `generate` fills every unset field from it, so a
checkpoint's `repetition_penalty: 1.05` would otherwise stay on silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedModel

from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter, PromptBatch
from grit_exp.rollout.generation import generation_settings
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler


@dataclass
class Rollout:
    prompt: PromptBatch  # one entry per completion (prompts repeated G times)
    rows: list[GritRow]  # one per completion
    completion_ids: torch.Tensor  # [N, T]
    completion_mask: torch.Tensor  # [N, T], 1 for real tokens (EOS included)
    texts: list[str]

    @property
    def num_completion_tokens(self) -> list[int]:
        return self.completion_mask.sum(1).tolist()

    def select(self, index: slice) -> Rollout:
        """A contiguous slice of completions (for micro-batches), with only their image rows."""
        rows = range(len(self.rows))[index]
        slices = self.prompt.image_slices[index]
        start, end = slices[0][0], slices[-1][1]
        keys = {k: v[index] for k, v in self.prompt.inputs.items() if torch.is_tensor(v) and k != "pixel_values"}
        keys["pixel_values"] = self.prompt.inputs["pixel_values"][start:end]
        prompt = PromptBatch(
            type(self.prompt.inputs)(keys),
            self.prompt.geometries[index],
            self.prompt.user_texts[index],
            [(a - start, b - start) for a, b in slices],
        )
        return Rollout(prompt, [self.rows[i] for i in rows], self.completion_ids[index], self.completion_mask[index], self.texts[index])


def completion_mask(ids: torch.Tensor, eos_token_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first EOS of each row, 0 after it."""
    is_eos = torch.isin(ids, torch.tensor(eos_token_ids, device=ids.device))
    seen_before = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    return (~seen_before).long()


def _generating_model(model: torch.nn.Module) -> PreTrainedModel:
    """The transformers model whose `generate` runs (inside a PEFT or DDP wrapper, if any)."""
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module
    raise TypeError(f"{type(model).__name__} holds no transformers model to generate with")


@contextmanager
def only_these_settings(model: torch.nn.Module, config: GenerationConfig) -> Iterator[None]:
    """Make `config` the model's generation config while generating, so `generate` merges nothing
    from the checkpoint's generation_config.json into it."""
    target = _generating_model(model)
    saved = target.generation_config
    target.generation_config = config
    try:
        yield
    finally:
        target.generation_config = saved


class HFRollout:
    def __init__(self, adapter: ModelAdapter, cfg: Any):
        self.adapter = adapter
        self.cfg = cfg

    def settings(self, greedy: bool) -> dict[str, Any]:
        """The effective generation settings (config tree + the tokenizer's ids), for metadata."""
        return {**generation_settings(self.cfg, greedy), **self.adapter.generation_kwargs()}

    def generation_config(self, greedy: bool) -> GenerationConfig:
        settings = self.settings(greedy)
        if not settings["stop_strings"]:
            settings["stop_strings"] = None
        return GenerationConfig(**settings)

    @torch.no_grad()
    def generate(
        self,
        model: PreTrainedModel,
        rows: list[GritRow],
        user_texts: list[str],
        num_generations: int = 1,
        greedy: bool = False,
        completion_seeds: list[int] | None = None,
    ) -> Rollout:
        """`completion_seeds` (one per completion): sample each completion from its own seed
        (`rollout/seeded_sampling.py`), so that results do not depend on batch layout or process count."""
        device = next(model.parameters()).device
        prompt = self.adapter.build_prompt_batch(rows, user_texts).repeat_interleave(num_generations).to(device)
        was_training = model.training
        model.eval()
        config = self.generation_config(greedy or completion_seeds is not None)
        processors = LogitsProcessorList()
        if completion_seeds is not None and not greedy:
            processors.append(PerRowSeededSampler(
                completion_seeds, float(self.cfg.temperature), int(self.cfg.top_k), float(self.cfg.top_p), device))
        try:
            with only_these_settings(model, config):
                # synced_gpus=False: the engine hands over whole (under ZeRO-3: gathered) weights, so
                # processes may generate different numbers of batches and tokens without lock-step
                sequences = model.generate(**prompt.inputs, generation_config=config, logits_processor=processors,
                                           tokenizer=self.adapter.tokenizer, synced_gpus=False)
        finally:
            model.train(was_training)
        ids = sequences[:, prompt.prompt_length :]
        mask = completion_mask(ids, self.adapter.eos_token_ids)
        if self.adapter.pad_token_id is not None and self.adapter.pad_token_id not in self.adapter.eos_token_ids:
            mask = mask * (ids != self.adapter.pad_token_id).long()  # rows finished by a stop string
        longest = int(mask.sum(1).max().item()) if mask.numel() else 0
        ids, mask = ids[:, :longest], mask[:, :longest]
        texts = self.adapter.decode_completions(ids, mask)
        repeated_rows = [r for r in rows for _ in range(num_generations)]
        return Rollout(prompt, repeated_rows, ids, mask, texts)
