"""Rollouts from a transformers model: G completions per prompt, each prompt (and image) processed once.

Returns token ids, a mask of the real completion tokens (through the first EOS), decoded texts and
the prompts' image geometry, trimmed to the longest real completion of the batch (never padded to
max_new_tokens). It does not score or train.

Tokens come from grit-exp's decode loop (`rollout/decode.py`: the tokens HF `generate` would give,
without its repeated prefills and finished rows), greedy or from per-completion seeds
(`rollout/seeded_sampling.py`), with the settings of the config tree only (`rollout/generation.py`;
a checkpoint's generation_config.json, e.g. `repetition_penalty: 1.05`, plays no part). Stop strings
are matched by token ids (`rollout/stop_strings.py`, HF's rule at a fraction of the cost of its
criterion), and the KV cache is written in place (`rollout/kv_cache.py`). `generation_config` and
`only_these_settings` run HF `generate` with the same settings: the reference the tests and
benchmarks compare the loop against. With `rollout.zoom.enabled` the loop serves zoom calls
(`rollout/zoom/turns.py`) and the Rollout carries the calls and the tool turns (judged after the rollout, not
during it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from transformers import GenerationConfig, PreTrainedModel, StoppingCriteriaList

from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter
from grit_exp.models.unwrap import pretrained_model
from grit_exp.rollout.decode import decode, greedy_tokens
from grit_exp.rollout.generation import generation_settings
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler
from grit_exp.rollout.stop_strings import StopStringsByTokenIds
from grit_exp.rollout.types import Rollout, completion_mask
from grit_exp.rollout.zoom.turns import ZoomSession

if TYPE_CHECKING:
    from grit_exp.rollout.judge_overlap import JudgeAhead


@contextmanager
def only_these_settings(model: torch.nn.Module, config: GenerationConfig) -> Iterator[None]:
    """Make `config` the model's generation config while generating, so `generate` merges nothing
    from the checkpoint's generation_config.json into it."""
    target = pretrained_model(model)
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

    def close(self) -> None:
        """Nothing to release (the rollout interface: a vLLM rollout shuts its engine down here)."""

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
        (`rollout/seeded_sampling.py`), so that results do not depend on batch layout or process count;
        without them a sampled rollout draws its seeds from torch's global generator.
        `judge_ahead`: judge rows as they finish (`rollout/judge_overlap.py`)."""
        device = next(model.parameters()).device
        prompts = self.adapter.build_prompt_batch(rows, user_texts).to(device)
        choose = greedy_tokens
        if not greedy:
            if completion_seeds is None:
                completion_seeds = torch.randint(2**63 - 1, (len(rows) * num_generations,)).tolist()
            choose = PerRowSeededSampler(completion_seeds, float(self.cfg.temperature), int(self.cfg.top_k),
                                         float(self.cfg.top_p), device).draw
        zoom = getattr(self.cfg, "zoom", None)
        zoom = zoom if zoom is not None and zoom.enabled else None
        tool = None
        if zoom is not None:  # judged after the rollout: a finished row's text is not its tokens' text
            tool = ZoomSession(self.adapter, zoom, rows, prompts.geometries, num_generations,
                               prompts.inputs.get("image_grid_thw"))
            judge_ahead = None
        observers = [judge_ahead.observer(prompts.prompt_length)] if judge_ahead is not None else []
        was_training = model.training
        model.eval()
        try:
            ids = decode(model, pretrained_model(model), prompts.inputs, num_generations, int(self.cfg.max_new_tokens),
                         choose, self.adapter.eos_token_ids, self.adapter.pad_token_id,
                         self.adapter.suppressed_token_ids, stop_rules=list(self.stop_criteria), observers=observers,
                         tool=tool)
        finally:
            model.train(was_training)
        prompt = prompts.repeat_interleave(num_generations)
        repeated_rows = [r for r in rows for _ in range(num_generations)]
        if tool is not None:
            ids, mask, tool_turns = tool.completions(ids)
            texts = self.adapter.decode_completions(ids, mask)
            calls = [tool.calls.get(c, []) for c in range(len(repeated_rows))]
            return Rollout(prompt, repeated_rows, ids, mask, texts, zoom_calls=calls, tool_turns=tool_turns)
        mask = completion_mask(ids, self.adapter.eos_token_ids)
        if self.adapter.pad_token_id is not None and self.adapter.pad_token_id not in self.adapter.eos_token_ids:
            mask = mask * (ids != self.adapter.pad_token_id).long()  # rows finished by a stop string
        longest = int(mask.sum(1).max().item()) if mask.numel() else 0
        ids, mask = ids[:, :longest], mask[:, :longest]
        texts = self.adapter.decode_completions(ids, mask)
        return Rollout(prompt, repeated_rows, ids, mask, texts)
