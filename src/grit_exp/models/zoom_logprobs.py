"""Per-token log-probs of completions that hold tool turns (zoom turns, grit_exp.rollout.zoom).

A completion here is the model's turns with the toolkit's tool turns between them (each a user turn that may
hold a crop). Every token is attended to; only the model-written ones (`completion_mask`) get log-probs, so
the loss, the KL and the token counts never see a tool token (their log-probs are 0 like padding's). The
inputs are those of one forward pass over the whole conversation: each row's images in order (prompt image,
then its crops), and for Qwen2.5-VL `mm_token_type_ids` marking every image token, so the model's own
`get_rope_index` gives the 3-D positions of several images in one sequence. With a KV cache (not under
gradient checkpointing) the group's prompt runs once and its cache is copied to the completions, which run
in a second pass with those same positions (as `ModelAdapter._shared_prompt_logits`); two passes either way,
and the vision tower runs in the second pass whether or not the micro-batch holds crops, so every process runs
as many of each. Left out: generating (grit_exp.rollout), single-turn completions
(`ModelAdapter.completion_logprobs` without tool turns, unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from grit_exp.models.logprobs import selected_token_logprobs
from grit_exp.models.unwrap import can_keep_cache, pretrained_model

if TYPE_CHECKING:
    from grit_exp.models.base import ModelAdapter, PromptBatch


@dataclass
class ToolTurnInputs:
    """What the tool turns inside completions add to a forward pass (zoom turns, grit_exp.rollout.zoom): which
    completion tokens the toolkit wrote (attended to, never trained) and the images they hold."""

    tool_mask: torch.Tensor  # [N, T] 1 for tool-turn tokens (template, image tokens, reply text)
    pixel_values: list[torch.Tensor | None]  # per completion: its crops' rows of pixel_values, in order
    image_grid_thw: list[torch.Tensor | None]  # Qwen: per completion [crops, 3]; None otherwise

    def take(self, rows: list[int], length: int) -> ToolTurnInputs:
        index = torch.tensor(rows, dtype=torch.long, device=self.tool_mask.device)
        return ToolTurnInputs(self.tool_mask.index_select(0, index)[:, :length], [self.pixel_values[r] for r in rows],
                              [self.image_grid_thw[r] for r in rows])


def tool_turn_logprobs(adapter: ModelAdapter, model: torch.nn.Module, prompt: PromptBatch,
                       completion_ids: torch.Tensor, completion_mask: torch.Tensor, tool: ToolTurnInputs,
                       temperature: float = 1.0) -> torch.Tensor:
    """[batch, T] log-probs of the model-written tokens (0 at tool-turn tokens and padding)."""
    attention = (completion_mask + tool.tool_mask.to(completion_mask.dtype)).clamp(max=1)
    if can_keep_cache(model):
        logits = _shared_prompt_logits(adapter, model, prompt, completion_ids, attention, tool)
    else:
        inputs = conversation_inputs(adapter, prompt, completion_ids, attention, tool)
        out = model(**inputs, use_cache=False, logits_to_keep=completion_ids.shape[1] + 1)
        logits = out.logits[:, :-1, :]
    token_logprobs = selected_token_logprobs(logits, completion_ids, temperature, adapter.suppressed_token_ids)
    return token_logprobs.masked_fill(completion_mask == 0, 0.0)


def _image_token_types(adapter: ModelAdapter, ids: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return (ids == adapter.processor.image_token_id).to(like.dtype)


def conversation_inputs(adapter: ModelAdapter, prompt: PromptBatch, completion_ids: torch.Tensor,
                        attention: torch.Tensor, tool: ToolTurnInputs) -> dict[str, Any]:
    """Inputs of one forward pass over prompt + completion (tool turns included): each row's images in order."""
    inputs = prompt.inputs
    skip = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
    data: dict[str, Any] = {k: v for k, v in inputs.items() if k not in skip}
    data["input_ids"] = torch.cat([inputs["input_ids"], completion_ids], dim=1)
    data["attention_mask"] = torch.cat([inputs["attention_mask"], attention.to(inputs["attention_mask"].dtype)], dim=1)
    pixels, grids = [], []
    for r, (a, b) in enumerate(prompt.image_slices):
        pixels.append(inputs["pixel_values"][a:b])
        if tool.pixel_values[r] is not None:
            pixels.append(tool.pixel_values[r].to(inputs["pixel_values"]))
        if "image_grid_thw" in inputs:
            grids.append(inputs["image_grid_thw"][r:r + 1])
            if tool.image_grid_thw[r] is not None:
                grids.append(tool.image_grid_thw[r].to(inputs["image_grid_thw"]))
    data["pixel_values"] = torch.cat(pixels, dim=0)
    if grids:
        data["image_grid_thw"] = torch.cat(grids, dim=0)
    if "mm_token_type_ids" in inputs:
        types = inputs["mm_token_type_ids"]
        data["mm_token_type_ids"] = torch.cat([types, _image_token_types(adapter, completion_ids, types)], dim=1)
    return data


def conversation_positions(adapter: ModelAdapter, model: torch.nn.Module, prompt: PromptBatch,
                           completion_ids: torch.Tensor, attention: torch.Tensor,
                           tool: ToolTurnInputs) -> torch.Tensor | None:
    """Qwen2.5-VL: the 3-D positions [3, batch, prompt + T] of the whole conversation, from the model's own
    `get_rope_index` (what one forward pass over it computes). None for 1-D RoPE (InternVL)."""
    if "mm_token_type_ids" not in prompt.inputs:
        return None
    data = conversation_inputs(adapter, prompt, completion_ids, attention, tool)
    positions, _ = pretrained_model(model).model.get_rope_index(
        data["input_ids"], mm_token_type_ids=data["mm_token_type_ids"], image_grid_thw=data["image_grid_thw"],
        attention_mask=data["attention_mask"])
    return positions


def _shared_prompt_logits(adapter: ModelAdapter, model: torch.nn.Module, prompt: PromptBatch,
                          completion_ids: torch.Tensor, attention: torch.Tensor, tool: ToolTurnInputs) -> torch.Tensor:
    """The logits predicting each completion token: the distinct prompts once, their caches copied to their
    completions, then tokens 0 .. T-2 of the completions (crops included) over them."""
    firsts, source = prompt.distinct_prompts()
    distinct = prompt.take(firsts)
    t = completion_ids.shape[1]
    prompt_positions, _ = adapter.continuation_positions(model, distinct, 1)
    out = model(**distinct.inputs, position_ids=prompt_positions, use_cache=True, logits_to_keep=1)
    index = torch.tensor(source, dtype=torch.long, device=completion_ids.device)
    first = out.logits[:, -1:, :].index_select(0, index)
    cache = out.cache
    cache.batch_select_indices(index)
    p = prompt.prompt_length
    n = max(t - 1, 1)  # t == 1: nothing left to predict, but the pass still runs (see completion_logprobs)
    full = conversation_positions(adapter, model, prompt, completion_ids, attention, tool)
    positions = None if full is None else full[..., p:p + n]
    mask = torch.cat([prompt.inputs["attention_mask"], attention[:, :n].to(prompt.inputs["attention_mask"].dtype)], dim=1)
    extra: dict[str, Any] = {}
    crops = [v for v in tool.pixel_values if v is not None]  # all inside tokens 0 .. T-2: a completion ends with its own token
    if crops:
        extra["pixel_values"] = torch.cat(crops, dim=0).to(prompt.inputs["pixel_values"])
        grids = [g for g in tool.image_grid_thw if g is not None]
        if grids:
            extra["image_grid_thw"] = torch.cat(grids, dim=0).to(completion_ids.device)
    rest = model(input_ids=completion_ids[:, :n], attention_mask=mask, position_ids=positions, cache=cache,
                 use_cache=True, **extra)
    logits = torch.cat([first, rest.logits[:, : t - 1]], dim=1)
    if not crops:  # the vision tower still runs once in this pass, in the graph with no effect (see below)
        logits = logits + 0.0 * _vision_tower_once(model, prompt)
    return logits


def _vision_tower_once(model: torch.nn.Module, prompt: PromptBatch) -> torch.Tensor:
    """The vision tower over the first prompt image, summed: run in the second pass of a micro-batch without
    crops so that every process runs the tower as often in each pass whether or not its completions zoomed
    (ZeRO-3 gathers a module's parameters at each call and reduce-scatters at each backward)."""
    inner = pretrained_model(model).model
    a, b = prompt.image_slices[0]
    pixels = prompt.inputs["pixel_values"][a:b]
    if "image_grid_thw" in prompt.inputs:
        out = inner.get_image_features(pixels, prompt.inputs["image_grid_thw"][:1], return_dict=True)
    else:
        out = inner.get_image_features(pixel_values=pixels, return_dict=True)
    features = out.pooler_output
    if isinstance(features, list | tuple):
        features = torch.cat(list(features), dim=0)
    return features.sum()
