"""Offline tiny models: randomly initialised Qwen2.5-VL and InternVL3, built in code, no download.

Each builder trains a small byte-level BPE with the family's special tokens and chat template,
builds a ~1.3 M parameter model (text hidden 128, 4 layers; vision hidden 64, 2 layers) of the native transformers class, and saves everything with
`save_pretrained` into a cache directory, which is then loaded through the same
`from_pretrained` path as a real checkpoint. Building is atomic (temp dir, then rename) and skipped
when the directory is complete. The weights are random: these models exist for tests and the CPU
demo, not for quality.

`build_adapter` calls `ensure_tiny_model` only for the builder's own directory in the toolkit's cache
(`${paths.cache_dir}/models/<builder>`, `grit_exp.config.model.check_model_path`); a `model.path`
given by the user must already hold a model. What `ensure_tiny_model` may touch: it builds only into a directory that does not exist or is
empty, and rebuilds (deletes, then replaces) only a directory that carries its own marker file
(`.grit_tiny_complete`, written last by a build). A complete Hugging Face model directory without
the marker (e.g. a trained checkpoint, `model.path=<run>/checkpoints/step_30/model`) is returned as
it is, to be loaded; anything else raises a `ConfigError` naming the directory. It never deletes a
directory it did not create.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from grit_exp.models.tokenizer import (
    INTERNVL_EXTRA_SPECIAL_TOKENS,
    QWEN_CHAT_TEMPLATE,
    QWEN_SPECIAL_TOKENS,
    train_byte_level_bpe,
)

log = logging.getLogger(__name__)

TINY_VERSION = 2  # bump when a builder changes, so cached tiny models are rebuilt
COMPLETE_MARKER = ".grit_tiny_complete"
TINY_IMAGE_SIZE = 112


INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tokenizer_corpus() -> list[str]:
    """Text the tiny BPE is trained on: the shipped prompts, questions and gold chains of the synthetic data."""
    from grit_exp.data.prompts import load_prompt_yaml
    from grit_exp.data.tokenizer_corpus import tokenizer_corpus as synthetic_corpus
    from grit_exp.hydra_app import CONF_DIR

    prompt_texts = []
    for path in sorted((CONF_DIR / "prompt").glob("*.yaml")):
        prompt = load_prompt_yaml(path)
        prompt_texts += [prompt.question_prefix, prompt.suffix, prompt.example]
        prompt_texts += [v for o in prompt.family_overrides.values() for v in (o.suffix, o.example) if v]
    # prompts are repeated so the BPE merges their fixed wording into few tokens (shorter sequences)
    return synthetic_corpus(prompt_texts=[t for t in prompt_texts if t] * 200)


def _tiny_text_config(vocab_size: int, eos_id: int, pad_id: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        bos_token_id=None,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=True,
    )


def _build_tiny_qwen2_5_vl(out: Path, seed: int) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2Tokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from grit_exp.models.processors import QwenImageProcessor

    vocab, merges = train_byte_level_bpe(tokenizer_corpus(), QWEN_SPECIAL_TOKENS)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab, merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
    )
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_SPECIAL_TOKENS[1:]})
    tokenizer.padding_side = "left"
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    text = _tiny_text_config(len(vocab), vocab["<|im_end|>"], vocab["<|endoftext|>"])
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=dict(
            depth=2,
            hidden_size=64,
            intermediate_size=128,
            num_heads=4,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=128,
            fullatt_block_indexes=[1],
            window_size=56,
        ),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=vocab["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=TINY_IMAGE_SIZE * TINY_IMAGE_SIZE)
    processor = QwenImageProcessor(image_processor, tokenizer, chat_template=QWEN_CHAT_TEMPLATE)
    model.generation_config.eos_token_id = vocab["<|im_end|>"]
    model.generation_config.pad_token_id = vocab["<|endoftext|>"]
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_tiny_internvl(out: Path, seed: int) -> None:
    from transformers import InternVLConfig, InternVLForConditionalGeneration, Qwen2Tokenizer
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from grit_exp.models.processors import InternVLImageProcessor

    specials = QWEN_SPECIAL_TOKENS + INTERNVL_EXTRA_SPECIAL_TOKENS
    vocab, merges = train_byte_level_bpe(tokenizer_corpus(), specials)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        extra_special_tokens={
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
    )
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    tokenizer.padding_side = "left"
    tokenizer.chat_template = INTERNVL_CHAT_TEMPLATE
    config = InternVLConfig(
        vision_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=[TINY_IMAGE_SIZE, TINY_IMAGE_SIZE],
            patch_size=[14, 14],
            attention_bias=True,
            norm_type="layer_norm",
            layer_scale_init_value=0.1,
        ),
        text_config=dict(model_type="qwen2", **_tiny_text_config(len(vocab), vocab["<|im_end|>"], vocab["<|endoftext|>"])),
        image_token_id=vocab["<IMG_CONTEXT>"],
        image_seq_length=(TINY_IMAGE_SIZE // 14) ** 2 // 4,
        downsample_ratio=0.5,
        vision_feature_select_strategy="default",
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    model.generation_config.eos_token_id = vocab["<|im_end|>"]
    model.generation_config.pad_token_id = vocab["<|endoftext|>"]
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        crop_to_patches=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    processor = InternVLImageProcessor(
        image_processor, tokenizer, image_seq_length=config.image_seq_length, chat_template=INTERNVL_CHAT_TEMPLATE
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _build_real_width_qwen2_5_vl(out: Path, seed: int) -> None:
    from grit_exp.models.real_width import build_real_width_qwen2_5_vl

    build_real_width_qwen2_5_vl(out, seed)


def _build_real_width_internvl3_2b(out: Path, seed: int) -> None:
    from grit_exp.models.real_width import build_real_width_internvl3_2b

    build_real_width_internvl3_2b(out, seed, INTERNVL_CHAT_TEMPLATE)


TINY_BUILDERS: dict[str, Callable[[Path, int], None]] = {
    "tiny_qwen2_5_vl": _build_tiny_qwen2_5_vl,
    "tiny_internvl": _build_tiny_internvl,
    "real_width_qwen2_5_vl": _build_real_width_qwen2_5_vl,  # grit_exp.models.real_width (rehearsals, benches)
    "real_width_internvl3_2b": _build_real_width_internvl3_2b,
}


# config.json's model_type of each builder's model (a checkpoint of another family is refused)
TINY_MODEL_TYPES = {"tiny_qwen2_5_vl": "qwen2_5_vl", "tiny_internvl": "internvl", "real_width_qwen2_5_vl": "qwen2_5_vl",
                    "real_width_internvl3_2b": "internvl"}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _marker_text(directory: Path) -> str | None:
    marker = directory / COMPLETE_MARKER
    return marker.read_text() if marker.is_file() else None


def _checked_model_dir(out: Path, builder: str) -> Path:
    """`out` if it is a complete model directory of the builder's family; else a ConfigError naming it."""
    from grit_exp.errors import ConfigError

    where = f"model.path={out}"
    keep = "it was left untouched (grit-exp builds a tiny model only into a new or empty directory)"
    if not (out / "config.json").is_file():
        raise ConfigError(f"{where}: not a complete model directory (no config.json); {keep}")
    if not any((out / name).is_file() for name in WEIGHT_FILES):
        raise ConfigError(f"{where}: not a complete model directory (no weights: {' / '.join(WEIGHT_FILES)}); {keep}")
    import json

    try:
        model_type = json.loads((out / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as err:
        raise ConfigError(f"{where}: config.json is not readable JSON ({err})") from None
    expected = TINY_MODEL_TYPES[builder]
    if model_type != expected:
        raise ConfigError(
            f"{where} holds a {model_type!r} model, but the model group (tiny_builder={builder}) is for "
            f"{expected!r} models; choose the model group of that family"
        )
    return out


def _discard_old_build(out: Path) -> None:
    """Move an old tiny build aside in one rename, then delete it (never half a directory left at `out`)."""
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    try:
        os.replace(out, trash / "model")
    except FileNotFoundError:
        pass  # another process discarded it first
    finally:
        shutil.rmtree(trash, ignore_errors=True)


def ensure_tiny_model(builder: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """The model directory for `model.path` with a tiny model group.

    - a complete build of this version (marker) at `path`: returned;
    - a complete model directory without the marker (a trained checkpoint): returned, to be loaded;
    - nothing, an empty directory, or an older tiny build (marker): the tiny model is built there;
    - anything else: ConfigError naming the directory, which is left untouched.
    """
    from grit_exp.errors import ConfigError

    if builder not in TINY_BUILDERS:
        raise ConfigError(f"model.tiny_builder={builder!r} is unknown; valid: {', '.join(TINY_BUILDERS)}")
    out = Path(path).expanduser()
    wanted = f"{builder} v{TINY_VERSION} seed {seed}"
    if _marker_text(out) == wanted:
        return out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"model.path={out}: is a file, not a model directory; it was left untouched")
    raw = str(path)
    if not out.exists() and not Path(raw).is_absolute() and raw.count("/") == 1 and not out.parent.exists():
        raise ConfigError(  # e.g. model.path=yfan1997/GRIT-20-Qwen2.5-VL-3B with the default (tiny) model group
            f"model.path={raw} looks like a Hugging Face Hub id, but the model group builds a random tiny model "
            f"({builder}); choose the checkpoint's model group too, e.g. model=qwen2_5_vl_3b model.path={raw}"
        )
    ours = _marker_text(out) is not None  # an older tiny build: the toolkit made it, it may replace it
    if out.is_dir() and not ours and any(out.iterdir()):
        log.info("model.path=%s is not a tiny model built by grit-exp: loading it as a model directory", out)
        return _checked_model_dir(out, builder)
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("building tiny model %s into %s", builder, out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        TINY_BUILDERS[builder](tmp, seed)
        (tmp / COMPLETE_MARKER).write_text(wanted)
        if _marker_text(out) == wanted:
            shutil.rmtree(tmp)  # another process (e.g. another rank) finished the same build first
            return out
        if _marker_text(out) is not None:  # an older build of the tiny model: its marker says the toolkit wrote it
            _discard_old_build(out)
        try:
            os.replace(tmp, out)  # onto a missing or empty directory only: rename(2) refuses a non-empty one
        except OSError:
            if _marker_text(out) != wanted:
                raise ConfigError(
                    f"model.path={out}: could not build the tiny model there (the directory is no longer empty); "
                    "it was left untouched"
                ) from None
            shutil.rmtree(tmp)  # lost a race to an identical build
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
