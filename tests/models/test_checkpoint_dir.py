"""A checkpoint's model directory (`ModelAdapter.save_model_dir`) is a complete Hugging Face model
directory: the native class, `AutoProcessor` and the adapters of the real model configs
(`model=qwen2_5_vl_3b model.path=<dir>`) load it, for both tiny families."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from model_helpers import make_rows, model_cfg
from transformers import AutoProcessor

from grit_exp.models import build_adapter
from tests.helpers.configs import compose_config

REAL_CONFIG = {"tiny_qwen2_5_vl": "qwen2_5_vl_3b", "tiny_internvl": "internvl3_2b"}
IMAGE_PROCESSOR = {"tiny_qwen2_5_vl": "Qwen2VLImageProcessorPil", "tiny_internvl": "GotOcr2ImageProcessorPil"}
VIDEO_PROCESSOR = {"tiny_qwen2_5_vl": "Qwen2VLVideoProcessor", "tiny_internvl": "InternVLVideoProcessor"}


@pytest.fixture(scope="module", params=list(REAL_CONFIG))
def saved(request, tiny_model_paths, tmp_path_factory):
    """A tiny model started from a checkpoint with generation leftovers, changed, then saved."""
    builder = request.param
    start = tmp_path_factory.mktemp("start") / builder
    shutil.copytree(tiny_model_paths[builder], start)
    gen = json.loads((start / "generation_config.json").read_text())
    (start / "generation_config.json").write_text(json.dumps({**gen, "repetition_penalty": 1.05, "top_k": 3}))
    adapter = build_adapter(model_cfg(builder, start, tiny=False))
    model = adapter.load_model("cpu")
    with torch.no_grad():
        model.lm_head.weight.mul_(1.5)  # trained weights differ from the start
    out = tmp_path_factory.mktemp("checkpoint") / "model"
    adapter.save_model_dir(model, out)
    return builder, adapter, model, out


def test_directory_holds_every_file(saved):
    builder, _, _, out = saved
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "processor_config.json"} <= names
    processor_config = json.loads((out / "processor_config.json").read_text())
    assert processor_config["video_processor"] == {"video_processor_type": VIDEO_PROCESSOR[builder]}  # for vLLM


def test_generation_config_is_ours_not_the_starting_checkpoints(saved):
    _, adapter, _, out = saved
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["repetition_penalty"] == 1.0 and "top_k" not in gen and gen["do_sample"] is False
    assert gen["eos_token_id"] == adapter.eos_token_ids and gen["pad_token_id"] == adapter.pad_token_id


def test_native_class_loads_the_same_weights(saved):
    _, adapter, model, out = saved
    again = type(model).from_pretrained(out)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_auto_processor_is_a_full_processor(saved, tmp_path):
    builder, adapter, _, out = saved
    processor = AutoProcessor.from_pretrained(out)
    assert type(processor) is type(adapter.processor)
    assert type(processor.image_processor).__name__ == IMAGE_PROCESSOR[builder]
    assert processor.chat_template == adapter.processor.chat_template
    row = make_rows(tmp_path)[1]
    from PIL import Image

    text = adapter.chat_text("\nQuestion: How many?")
    ours = adapter.processor(text=[text], images=[Image.open(row.image).convert("RGB")], return_tensors="pt")
    theirs = processor(text=[text], images=[Image.open(row.image).convert("RGB")], return_tensors="pt")
    assert torch.equal(ours["input_ids"], theirs["input_ids"])
    assert torch.equal(ours["pixel_values"], theirs["pixel_values"])


def test_real_model_config_loads_the_directory(saved, tmp_path):
    """`model=qwen2_5_vl_3b model.path=<checkpoint>/model` (its real image settings) builds, processes, loads."""
    builder, _, model, out = saved
    cfg = compose_config("eval", f"model={REAL_CONFIG[builder]}", f"model.path={out}",
                         "model.dtype=float32", "model.max_tiles=1")
    adapter = build_adapter(cfg.model)
    batch = adapter.build_prompt_batch(make_rows(tmp_path), ["\nQuestion: a?", "\nQuestion: b?"])
    assert len(batch) == 2
    loaded = adapter.load_model("cpu")
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
