"""HF `generate` rollouts: G sampled completions per prompt, images processed once per prompt.

Returns token ids, a mask of the real completion tokens (through the first EOS), decoded texts and
the prompts' image geometry, trimmed to the longest real completion of the batch (never padded to
max_new_tokens). It does not score or train.

`generate` runs with a `GenerationConfig` built from the config tree (`rollout/generation.py`) and
the adapter's token ids, and while it runs the model's own `generation_config` (read from the
checkpoint's generation_config.json) is set aside: `generate` fills every unset field from it, so a
checkpoint's `repetition_penalty: 1.05` would otherwise stay on silently. Stop strings are matched
by token ids (`rollout/stop_strings.py`, HF's rule at a fraction of the cost of its criterion), and
the KV cache is written in place (`rollout/kv_cache.py`) instead of concatenated at every token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import GenerationConfig, LogitsProcessorList, PreTrainedModel, StoppingCriteriaList

from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter, PromptBatch
from grit_exp.rollout.generation import generation_settings
from grit_exp.rollout.kv_cache import in_place_cache
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler
from grit_exp.rollout.stop_strings import StopStringsByTokenIds

if TYPE_CHECKING:
    from grit_exp.rollout.judge_overlap import JudgeAhead


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
        """A contiguous slice of completions (for micro-batches), with only their image rows, trimmed to
        its own longest completion (not the batch's)."""
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
        mask = self.completion_mask[index]
        longest = int(mask.sum(1).max()) if mask.numel() else 0
        return Rollout(prompt, [self.rows[i] for i in rows], self.completion_ids[index][:, :longest], mask[:, :longest],
                       self.texts[index])


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
        self._stop_criteria: StoppingCriteriaList | None = None

    @property
    def stop_criteria(self) -> StoppingCriteriaList:
        """`rollout.stop_strings` matched by token ids; built on first use (it reads the vocabulary)."""
        if self._stop_criteria is None:
            stop_strings = list(self.cfg.stop_strings or [])
            self._stop_criteria = StoppingCriteriaList(
                [StopStringsByTokenIds(self.adapter.tokenizer, stop_strings)] if stop_strings else [])
        return self._stop_criteria

    def settings(self, greedy: bool) -> dict[str, Any]:
        """The effective generation settings (config tree + the tokenizer's ids), for metadata."""
        return {**generation_settings(self.cfg, greedy), **self.adapter.generation_kwargs()}

    def generation_config(self, greedy: bool) -> GenerationConfig:
        settings = self.settings(greedy)
        settings["stop_strings"] = None  # matched by `self.stop_criteria` (token ids), not by HF's string criterion
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
        judge_ahead: JudgeAhead | None = None,
    ) -> Rollout:
        """`completion_seeds` (one per completion): sample each completion from its own seed
        (`rollout/seeded_sampling.py`), so that results do not depend on batch layout or process count.
        `judge_ahead`: judge rows as they finish (`rollout/judge_overlap.py`)."""
        device = next(model.parameters()).device
        prompt = self.adapter.build_prompt_batch(rows, user_texts).repeat_interleave(num_generations).to(device)
        was_training = model.training
        model.eval()
        config = self.generation_config(greedy or completion_seeds is not None)
        processors = LogitsProcessorList()
        if completion_seeds is not None and not greedy:
            processors.append(PerRowSeededSampler(
                completion_seeds, float(self.cfg.temperature), int(self.cfg.top_k), float(self.cfg.top_p), device))
        criteria = self.stop_criteria
        if judge_ahead is not None:
            criteria = StoppingCriteriaList([*criteria, judge_ahead.observer(prompt.prompt_length)])
        try:
            with only_these_settings(model, config):
                # synced_gpus=False: the engine hands over whole (under ZeRO-3: gathered) weights, so
                # processes may generate different numbers of batches and tokens without lock-step
                sequences = model.generate(**prompt.inputs, generation_config=config, logits_processor=processors,
                                           stopping_criteria=criteria, synced_gpus=False,
                                           past_key_values=in_place_cache(int(config.max_new_tokens)))
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
