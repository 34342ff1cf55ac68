"""InternVL3 adapter (native `InternVLForConditionalGeneration`, the `-hf` checkpoints).

Boxes are normalised to [0, 1000] of the full original image, whatever the tiling, so the
geometry needs only the original size. InternVL uses 1-D RoPE: no extra forward inputs.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BatchFeature, InternVLForConditionalGeneration, PreTrainedModel

from grit_exp.data.schema import GritRow
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.models.base import ModelAdapter
from grit_exp.models.processors import load_internvl_processor


class InternVLAdapter(ModelAdapter):
    family = "internvl"
    model_class = InternVLForConditionalGeneration

    def _load_processor(self) -> Any:
        return load_internvl_processor(self.path, self.cfg.tile_size, self.cfg.max_tiles)

    def _geometry(self, row: GritRow, inputs: BatchFeature, index: int) -> ImageGeometry:
        return ImageGeometry.for_internvl(row.width, row.height)

    def _image_slices(self, inputs: BatchFeature) -> list[tuple[int, int]]:
        # one image per prompt: its tiles are the `<img>` blocks' share of pixel_values, in order
        image_token = self.processor.image_token_id
        tiles_per_prompt = [
            int((ids == image_token).sum()) // self.processor.image_seq_length for ids in inputs["input_ids"]
        ]
        bounds, start = [], 0
        for n in tiles_per_prompt:
            bounds.append((start, start + n))
            start += n
        if start != inputs["pixel_values"].shape[0]:
            raise RuntimeError(f"InternVL tiles do not add up: {tiles_per_prompt} vs {inputs['pixel_values'].shape[0]}")
        return bounds

    def parameter_groups(self, model: PreTrainedModel) -> dict[str, list[torch.nn.Parameter]]:
        inner = model.model
        return {
            "vision": list(inner.vision_tower.parameters()),
            "projector": list(inner.multi_modal_projector.parameters()),
            "llm": list(inner.language_model.parameters()) + list(model.lm_head.parameters()),
        }
