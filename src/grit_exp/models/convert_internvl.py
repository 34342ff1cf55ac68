"""`python -m grit_exp.models.convert_internvl SRC DST`: a remote-code InternVL checkpoint (the layout
of OpenGVLab/InternVL3-2B and the released GRIT-20-InternVL-2B: `InternVLChatModel`, `llm_config`,
`vision_config`, safetensors with `vision_model.*`, `mlp1.*`, `language_model.*`) converted to the
native transformers layout of the `-hf` checkpoints that `InternVLForConditionalGeneration` and
`InternVLAdapter` load.

Hand-written because transformers ships its converter only in its source repository, and that
script needs the remote code, the hub and torchvision. The conversion is plain renames plus the
split of the vision attention's fused `qkv` (environment notes); the config is rebuilt from the
original's `llm_config` / `vision_config`; tokenizer files are copied and given the named image
tokens the native processor looks up; the chat template puts `<IMG_CONTEXT>` where the image goes.

Refuses (one line, exit 2) a checkpoint whose architecture it does not know and a DST that exists
and is not empty; writes into a temporary sibling directory and renames it at the end, so DST is
either complete or absent. Left out: InternViT-6B's q/k norms beyond their rename, video, and LLMs
other than Qwen2 (InternVL3-1B..78B use Qwen2.5; the 2.5 series' InternLM2 is refused).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from grit_exp.models.tiny import INTERNVL_CHAT_TEMPLATE

log = logging.getLogger(__name__)

KNOWN_ARCHITECTURES = {"InternVLChatModel"}
KNOWN_LLMS = {"Qwen2ForCausalLM"}
IMAGE_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# (original pattern, native replacement), applied in order to every key
KEY_RENAMES = [
    (r"^vision_model\.", "model.vision_tower."),
    (r"\.embeddings\.class_embedding$", ".embeddings.cls_token"),
    (r"\.embeddings\.patch_embedding\.", ".embeddings.patch_embeddings.projection."),
    (r"\.embeddings\.position_embedding$", ".embeddings.position_embeddings"),
    (r"\.encoder\.layers\.", ".encoder.layer."),
    (r"\.attn\.proj\.", ".attention.projection_layer."),
    (r"\.attn\.(q_norm|k_norm)\.", r".attention.\1."),
    (r"\.ls1$", ".lambda_1"),
    (r"\.ls2$", ".lambda_2"),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"^mlp1\.0\.", "model.multi_modal_projector.layer_norm."),
    (r"^mlp1\.1\.", "model.multi_modal_projector.linear_1."),
    (r"^mlp1\.3\.", "model.multi_modal_projector.linear_2."),
    (r"^language_model\.model\.", "model.language_model."),
    (r"^language_model\.lm_head\.", "lm_head."),
]
QKV = re.compile(r"^(.*)\.attn\.qkv\.(weight|bias)$")

DEFAULT_CHAT_TEMPLATE = INTERNVL_CHAT_TEMPLATE  # InternVL3's template with the native <IMG_CONTEXT> placeholder


class ConversionError(ValueError):
    """The source cannot be converted or the destination cannot be written; the message says why."""


def convert_key(key: str) -> str:
    for pattern, replacement in KEY_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def convert_state_dict(original: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original tensors under native names; the fused vision `qkv` split into q, k, v (equal thirds)."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in original.items():
        fused = QKV.match(key)
        if fused:
            prefix = convert_key(fused.group(1))
            for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0), strict=True):
                out[f"{prefix}.attention.{name}.{fused.group(2)}"] = part.contiguous()
        else:
            out[convert_key(key)] = tensor
    return out


def check_source(config: dict, src: Path) -> None:
    architectures = set(config.get("architectures") or [])
    if not architectures & KNOWN_ARCHITECTURES:
        raise ConversionError(
            f"{src}/config.json: architectures={sorted(architectures)} is not a remote-code InternVL checkpoint this "
            f"converter knows ({', '.join(sorted(KNOWN_ARCHITECTURES))}); a native -hf checkpoint needs no conversion"
        )
    llm = set((config.get("llm_config") or {}).get("architectures") or [])
    if not llm & KNOWN_LLMS:
        raise ConversionError(
            f"{src}/config.json: llm_config.architectures={sorted(llm)} is not supported (known: {', '.join(sorted(KNOWN_LLMS))})"
        )


def native_config(config: dict, image_token_id: int):
    """The `InternVLConfig` of a remote-code config.json."""
    from transformers import InternVLConfig

    vision, llm = dict(config["vision_config"]), dict(config["llm_config"])
    image_size = int(config.get("force_image_size") or vision["image_size"])
    patch = int(vision["patch_size"])
    downsample = float(config.get("downsample_ratio", 0.5))
    text = {k: v for k, v in llm.items() if k not in ("architectures", "auto_map", "_name_or_path", "transformers_version")}
    text["model_type"] = "qwen2"
    return InternVLConfig(
        vision_config=dict(
            hidden_size=vision["hidden_size"], intermediate_size=vision["intermediate_size"],
            num_attention_heads=vision["num_attention_heads"], num_hidden_layers=vision["num_hidden_layers"],
            image_size=[image_size, image_size], patch_size=[patch, patch],
            attention_bias=bool(vision.get("qkv_bias", True)), norm_type=vision.get("norm_type", "layer_norm"),
            layer_norm_eps=vision.get("layer_norm_eps", 1e-6), use_qk_norm=bool(vision.get("qk_normalization", False)),
            hidden_act=vision.get("hidden_act", "gelu"),
        ),
        text_config=text,
        image_token_id=image_token_id,
        image_seq_length=int((image_size // patch) ** 2 * downsample**2),
        downsample_ratio=downsample,
        vision_feature_layer=int(config.get("select_layer", -1)),
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        tie_word_embeddings=bool(llm.get("tie_word_embeddings", False)),
    )


def _read_weights(src: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise ConversionError(f"{src}: no *.safetensors weights (a .bin checkpoint: convert it to safetensors first)")
    weights: dict[str, torch.Tensor] = {}
    for f in files:
        weights.update(load_file(f))
    return weights


def _tokenizer_and_template(src: Path, work: Path):
    """The checkpoint's tokenizer with the named image tokens the native processor looks up
    (`start_image_token` ...), and a chat template with `<IMG_CONTEXT>` as the image placeholder."""
    from transformers import AutoTokenizer

    work.mkdir()
    for path in src.iterdir():
        if path.is_file() and (path.name.startswith(("tokenizer", "special_tokens_map", "added_tokens"))
                               or path.name in ("vocab.json", "merges.txt")):
            shutil.copy(path, work / path.name)
    tok_config_path = work / "tokenizer_config.json"
    tok_config = json.loads(tok_config_path.read_text()) if tok_config_path.is_file() else {}
    tok_config.pop("auto_map", None)  # remote code is never used
    tok_config_path.write_text(json.dumps({**tok_config, **IMAGE_TOKENS}))
    tokenizer = AutoTokenizer.from_pretrained(work, trust_remote_code=False)
    missing = [t for t in IMAGE_TOKENS.values() if t != "<video>" and t not in tokenizer.get_vocab()]
    if missing:
        raise ConversionError(f"{src}: the tokenizer has no {missing} tokens; is this an InternVL checkpoint?")
    template = getattr(tokenizer, "chat_template", None)
    template = template.replace("<image>", "<IMG_CONTEXT>") if template and "<image>" in template else DEFAULT_CHAT_TEMPLATE
    tokenizer.chat_template = template
    return tokenizer, template


def convert(src: str | Path, dst: str | Path) -> Path:
    """Convert SRC (remote-code layout) into DST (native layout); DST must not exist or be empty."""
    from safetensors.torch import save_file
    from transformers import GenerationConfig, InternVLForConditionalGeneration
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import GotOcr2ImageProcessorPil

    from grit_exp.models.processors import InternVLImageProcessor

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not (src / "config.json").is_file():
        raise ConversionError(f"{src}: no config.json (SRC must be a checkpoint directory)")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ConversionError(f"{dst} exists and is not an empty directory; nothing was written (choose a new DST)")
    config = json.loads((src / "config.json").read_text())
    check_source(config, src)
    with tempfile.TemporaryDirectory() as work:
        tokenizer, template = _tokenizer_and_template(src, Path(work) / "tokenizer")
    native = native_config(config, tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"))
    state = convert_state_dict(_read_weights(src))
    if native.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    with torch.device("meta"):
        expected = set(InternVLForConditionalGeneration(native).state_dict())
    if native.tie_word_embeddings:
        expected.discard("lm_head.weight")
    if set(state) != expected:
        raise ConversionError(
            f"{src}: the converted weights do not match the native model: unexpected {sorted(set(state) - expected)[:5]}, "
            f"missing {sorted(expected - set(state))[:5]}"
        )
    generation = GenerationConfig(eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                  pad_token_id=tokenizer.pad_token_id, do_sample=False)
    tile = int(native.vision_config.image_size[0])
    max_tiles = int(config.get("max_dynamic_patch", 12)) if config.get("dynamic_image_size", False) else 1
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": tile, "width": tile}, crop_to_patches=max_tiles > 1, max_patches=max_tiles,
        image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD,
    )
    processor = InternVLImageProcessor(image_processor, tokenizer, image_seq_length=native.image_seq_length,
                                       chat_template=template)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        native.architectures = ["InternVLForConditionalGeneration"]
        native.save_pretrained(tmp)
        generation.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if dst.exists():
            dst.rmdir()  # empty (checked above)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("converted %s -> %s", src, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grit_exp.models.convert_internvl", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="remote-code InternVL checkpoint directory (InternVLChatModel)")
    parser.add_argument("dst", help="new directory for the native (-hf) checkpoint; must not exist or be empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        convert(args.src, args.dst)
    except ConversionError as err:
        print(f"convert_internvl: {err}", file=sys.stderr)
        return 2
    print(f"converted {args.src} -> {args.dst}; use it with model=internvl3_2b model.path={args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
