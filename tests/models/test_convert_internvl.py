"""`python -m grit_exp.models.convert_internvl`: a tiny checkpoint in the remote-code layout (built here by
renaming a tiny native InternVL's weights the other way and writing an `InternVLChatModel` config)
converts to the native layout with the same logits; unknown architectures and a non-empty DST are refused."""

from __future__ import annotations

import json
import re

import pytest
import torch
from model_helpers import make_rows, model_cfg
from safetensors.torch import save_file
from transformers import InternVLForConditionalGeneration

from grit_exp.models import build_adapter
from grit_exp.models.convert_internvl import ConversionError, convert, main

# native name -> remote-code name, written independently of the converter's table
TO_ORIGINAL = [
    (r"^model\.vision_tower\.", "vision_model."),
    (r"\.embeddings\.cls_token$", ".embeddings.class_embedding"),
    (r"\.embeddings\.patch_embeddings\.projection\.", ".embeddings.patch_embedding."),
    (r"\.embeddings\.position_embeddings$", ".embeddings.position_embedding"),
    (r"\.encoder\.layer\.", ".encoder.layers."),
    (r"\.attention\.projection_layer\.", ".attn.proj."),
    (r"\.lambda_1$", ".ls1"),
    (r"\.lambda_2$", ".ls2"),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^model\.multi_modal_projector\.layer_norm\.", "mlp1.0."),
    (r"^model\.multi_modal_projector\.linear_1\.", "mlp1.1."),
    (r"^model\.multi_modal_projector\.linear_2\.", "mlp1.3."),
    (r"^model\.language_model\.", "language_model.model."),
    (r"^lm_head\.", "language_model.lm_head."),
]


def original_state(native: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, qkv = {}, {}
    for key, tensor in native.items():
        fused = re.match(r"^(model\.vision_tower\..*)\.attention\.(q|k|v)_proj\.(weight|bias)$", key)
        if fused:
            qkv.setdefault((fused.group(1), fused.group(3)), {})[fused.group(2)] = tensor
            continue
        for pattern, replacement in TO_ORIGINAL:
            key = re.sub(pattern, replacement, key)
        out[key] = tensor.clone()
    for (prefix, kind), parts in qkv.items():
        name = prefix.replace("model.vision_tower.", "vision_model.").replace(".encoder.layer.", ".encoder.layers.")
        out[f"{name}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


@pytest.fixture(scope="module")
def native_tiny(tiny_model_paths):
    return InternVLForConditionalGeneration.from_pretrained(tiny_model_paths["tiny_internvl"]).eval()


@pytest.fixture(scope="module")
def original_dir(native_tiny, tiny_model_paths, tmp_path_factory):
    """The tiny model as a remote-code checkpoint: InternVLChatModel config, original key names, <image> template."""
    src = tiny_model_paths["tiny_internvl"]
    out = tmp_path_factory.mktemp("original")
    save_file(original_state(native_tiny.state_dict()), out / "model.safetensors", metadata={"format": "pt"})
    native = json.loads((src / "config.json").read_text())
    text, vision = native["text_config"], native["vision_config"]
    config = {
        "architectures": ["InternVLChatModel"], "model_type": "internvl_chat", "downsample_ratio": 0.5,
        "force_image_size": 112, "select_layer": -1, "template": "internvl2_5", "dynamic_image_size": False,
        "max_dynamic_patch": 1, "use_thumbnail": False, "ps_version": "v2",
        "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"},
        "llm_config": {**text, "architectures": ["Qwen2ForCausalLM"]},
        "vision_config": {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b",
                          "hidden_size": vision["hidden_size"], "intermediate_size": vision["intermediate_size"],
                          "num_attention_heads": vision["num_attention_heads"],
                          "num_hidden_layers": vision["num_hidden_layers"], "image_size": 112, "patch_size": 14,
                          "qkv_bias": True, "norm_type": "layer_norm", "layer_norm_eps": 1e-6,
                          "qk_normalization": False, "hidden_act": "gelu"},
    }
    (out / "config.json").write_text(json.dumps(config))
    (out / "tokenizer.json").write_text((src / "tokenizer.json").read_text())
    tok_config = json.loads((src / "tokenizer_config.json").read_text())
    for named in ("start_image_token", "end_image_token", "context_image_token", "video_token"):
        tok_config.pop(named, None)  # the remote-code tokenizer has no named image tokens
    template = (src / "chat_template.jinja").read_text().replace("<IMG_CONTEXT>", "<image>")
    (out / "tokenizer_config.json").write_text(json.dumps({**tok_config, "chat_template": template}))
    return out


def test_converted_checkpoint_gives_the_same_logits(native_tiny, original_dir, tiny_model_paths, tmp_path):
    dst = convert(original_dir, tmp_path / "converted")
    converted, info = InternVLForConditionalGeneration.from_pretrained(dst, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    tiny = build_adapter(model_cfg("tiny_internvl", tiny_model_paths["tiny_internvl"]))
    adapter = build_adapter(model_cfg("tiny_internvl", dst, tiny=False))
    rows = make_rows(tmp_path)
    batch = adapter.build_prompt_batch(rows, ["\nQuestion: How many?", "\nQuestion: Where?"])
    reference = tiny.build_prompt_batch(rows, ["\nQuestion: How many?", "\nQuestion: Where?"])
    assert torch.equal(batch.inputs["input_ids"], reference.inputs["input_ids"])  # template: <image> -> <IMG_CONTEXT>
    with torch.no_grad():
        ours = converted.eval()(**batch.inputs).logits
        theirs = native_tiny(**reference.inputs).logits
    assert torch.equal(ours, theirs)


def test_unknown_architecture_is_refused(original_dir, tmp_path, capsys):
    src = tmp_path / "llava"
    src.mkdir()
    config = json.loads((original_dir / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "architectures": ["LlavaForConditionalGeneration"]}))
    assert main([str(src), str(tmp_path / "dst")]) == 2  # the exit code of `python -m grit_exp.models.convert_internvl`
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err  # one line
    assert "architectures=['LlavaForConditionalGeneration']" in err and "InternVLChatModel" in err
    assert not (tmp_path / "dst").exists()


def test_a_non_empty_destination_is_never_touched(original_dir, tmp_path):
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "notes.txt").write_text("keep me")
    with pytest.raises(ConversionError, match="exists and is not an empty directory"):
        convert(original_dir, dst)
    assert [p.name for p in dst.iterdir()] == ["notes.txt"] and (dst / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"], "no temporary directory left behind"
