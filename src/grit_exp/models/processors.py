"""Image-only processors for both families, built and loaded explicitly.

transformers' own processors for these families require a video processor, which needs
torchvision (unusable beside our torch wheel), and `AutoProcessor.from_pretrained` silently
returns only the tokenizer when it cannot build one. So we always construct the processor from its
parts: the checkpoint's tokenizer and chat template, plus the PIL image processor of the family.
Video inputs are deliberately unsupported.

Importing this module registers the two image-only processors with `AutoProcessor` (for the
families' config classes, and by name for the `processor_class` our model directories record), so
`AutoProcessor.from_pretrained(<checkpoint>/model)` returns a full processor in this process instead
of silently only the tokenizer. Elsewhere (no grit_exp imported, torchvision present: transformers,
vLLM) the same directory loads as the family's own processor: `VIDEO_PROCESSOR_TYPES` names the video
processor that a saved processor_config.json declares for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoProcessor, AutoTokenizer, InternVLConfig, Qwen2_5_VLConfig
from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil
from transformers.models.internvl.processing_internvl import InternVLProcessor
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.utils import cached_file


class QwenImageProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL processor without a video processor (sub-processors are read from this signature)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        kwargs.pop("video_processor", None)  # declared in saved directories for the family's own processor
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class InternVLImageProcessor(InternVLProcessor):
    """InternVL processor without a video processor."""

    def __init__(self, image_processor=None, tokenizer=None, image_seq_length: int = 256, chat_template=None, **kwargs):
        kwargs.pop("video_processor", None)
        super().__init__(image_processor, tokenizer, None, image_seq_length=image_seq_length, chat_template=chat_template, **kwargs)


# what a saved processor_config.json declares, so the family's own processor (which needs a video
# processor, hence torchvision) loads the directory where grit_exp is not imported (e.g. vLLM)
VIDEO_PROCESSOR_TYPES = {QwenImageProcessor: "Qwen2VLVideoProcessor", InternVLImageProcessor: "InternVLVideoProcessor"}

AutoProcessor.register(Qwen2_5_VLConfig, QwenImageProcessor, exist_ok=True)
AutoProcessor.register(InternVLConfig, InternVLImageProcessor, exist_ok=True)


def _chat_template(path: str, tokenizer) -> str:
    """The checkpoint's chat template: the tokenizer's, else chat_template.jinja / .json beside it."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    for name in ("chat_template.jinja", "chat_template.json"):
        found = cached_file(path, name, _raise_exceptions_for_missing_entries=False)
        if found:
            text = Path(found).read_text()
            return json.loads(text)["chat_template"] if name.endswith(".json") else text
    raise FileNotFoundError(f"{path}: no chat template (tokenizer, chat_template.jinja or chat_template.json)")


def load_qwen_processor(path: str, min_pixels: int, max_pixels: int) -> QwenImageProcessor:
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, min_pixels=min_pixels, max_pixels=max_pixels)
    return QwenImageProcessor(image_processor, tokenizer, chat_template=_chat_template(path, tokenizer))


def load_internvl_processor(path: str, tile_size: int, max_tiles: int) -> InternVLImageProcessor:
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    image_processor = GotOcr2ImageProcessorPil.from_pretrained(
        path,
        size={"height": tile_size, "width": tile_size},
        crop_to_patches=max_tiles > 1,
        max_patches=max_tiles,
    )
    # tokens per tile after InternVL's pixel shuffle (downsample 0.5): (tile / 14)^2 / 4
    image_seq_length = (tile_size // 14) ** 2 // 4
    return InternVLImageProcessor(
        image_processor, tokenizer, image_seq_length=image_seq_length, chat_template=_chat_template(path, tokenizer)
    )
