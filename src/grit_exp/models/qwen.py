"""Qwen2.5-VL adapter: boxes are absolute pixels of the resized image the model receives.

The resized frame comes from the processor's `image_grid_thw` (grid x 14 px patches), so boxes map
back to original pixels exactly. Forward passes get `mm_token_type_ids` (the prompt's, then zeros
for the completion) so the model builds the same 3-D mRoPE positions as during generation; a forward
in two parts (shared prompt, then completions) gets those positions explicitly.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BatchFeature, PreTrainedModel, Qwen2_5_VLForConditionalGeneration

from grit_exp.data.schema import GritRow
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.models.base import ModelAdapter, PromptBatch
from grit_exp.models.processors import load_qwen_processor
from grit_exp.models.unwrap import pretrained_model


class QwenAdapter(ModelAdapter):
    family = "qwen2_5_vl"
    model_class = Qwen2_5_VLForConditionalGeneration

    def _load_processor(self) -> Any:
        return load_qwen_processor(self.path, self.cfg.min_pixels, self.cfg.max_pixels)

    @property
    def patch_size(self) -> int:
        return int(self.processor.image_processor.patch_size)

    def _geometry(self, row: GritRow, inputs: BatchFeature, index: int) -> ImageGeometry:
        grid = [int(x) for x in inputs["image_grid_thw"][index]]
        return ImageGeometry.for_qwen_grid(row.width, row.height, grid, patch_size=self.patch_size)

    def _image_slices(self, inputs: BatchFeature) -> list[tuple[int, int]]:
        sizes = [int(torch.prod(g)) for g in inputs["image_grid_thw"]]
        bounds, start = [], 0
        for n in sizes:
            bounds.append((start, start + n))
            start += n
        return bounds

    def extra_forward_inputs(self, prompt: PromptBatch, completion_ids: torch.Tensor) -> dict[str, Any]:
        prompt_types = prompt.inputs["mm_token_type_ids"]
        zeros = torch.zeros_like(completion_ids, dtype=prompt_types.dtype)
        return {"mm_token_type_ids": torch.cat([prompt_types, zeros], dim=1)}

    def continuation_positions(
        self, model: torch.nn.Module, prompt: PromptBatch, length: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The prompt's 3-D mRoPE positions (the model's own `get_rope_index`, which needs no weights)
        and those of the text that follows: each row's largest prompt position + 1, 2, ... on all 3 axes."""
        inputs = prompt.inputs
        positions, _ = pretrained_model(model).model.get_rope_index(
            inputs["input_ids"], mm_token_type_ids=inputs["mm_token_type_ids"], image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"])
        start = positions.amax(dim=(0, 2)) + 1  # [rows]
        following = start[:, None] + torch.arange(length, device=positions.device)
        return positions, following.unsqueeze(0).expand(3, -1, -1)

    def turn_positions(self, model: torch.nn.Module, sequence: torch.Tensor, image_grid_thw: torch.Tensor | None,
                       last: torch.Tensor, n: int) -> torch.Tensor:
        """[4, n]: the text axis counts on from `last[0]`; the 3 mRoPE axes are the model's own `get_rope_index`
        over the whole conversation (its images' grids in order), as a fresh prefill of it would use them."""
        ids = sequence[None]
        types = (ids == self.processor.image_token_id).int()
        rope, _ = pretrained_model(model).model.get_rope_index(ids, mm_token_type_ids=types,
                                                               image_grid_thw=image_grid_thw)
        text = last[:1] + torch.arange(1, n + 1, device=last.device)
        return torch.cat([text, rope[:, 0, -n:].to(last.device)], dim=0)

    def parameter_groups(self, model: PreTrainedModel) -> dict[str, list[torch.nn.Parameter]]:
        visual = model.model.visual
        return {
            "vision": [p for n, p in visual.named_parameters() if not n.startswith("merger.")],
            "projector": list(visual.merger.parameters()),
            "llm": list(model.model.language_model.parameters()) + list(model.lm_head.parameters()),
        }
