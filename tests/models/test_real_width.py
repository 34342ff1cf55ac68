"""The real-width, reduced-depth Qwen2.5-VL-3B: the published widths, the real vocabulary and special
ids, the paper's image geometry; built offline and run through the adapter (slow: ~2.2 GB)."""

from __future__ import annotations

import pytest

from grit_exp.models.real_width import REAL_SPECIAL_IDS, real_qwen2_tokenizer, real_width_qwen2_5_vl_config


def test_the_config_has_the_real_widths_and_reduced_depth() -> None:
    config = real_width_qwen2_5_vl_config()
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_attention_heads, text.num_key_value_heads) == (2048, 11008, 16, 2)
    assert text.vocab_size == 151936 and text.num_hidden_layers == 2 and config.tie_word_embeddings
    assert text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (vision.hidden_size, vision.intermediate_size, vision.num_heads, vision.out_hidden_size) == (1280, 3420, 16, 2048)
    assert vision.depth == 2 and vision.fullatt_block_indexes == [1] and vision.window_size == 112  # block 0: window attention
    assert config.image_token_id == 151655 and config.vision_start_token_id == 151652


def test_the_tokenizer_is_qwens() -> None:
    tokenizer = real_qwen2_tokenizer()
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") == REAL_SPECIAL_IDS["<|image_pad|>"] == 151655
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") == 151645


@pytest.mark.slow
def test_built_it_processes_a_real_size_image_and_gives_logprobs(grit_cache, tmp_path) -> None:
    import torch
    from omegaconf import OmegaConf
    from PIL import Image

    from grit_exp.config import ModelConfig
    from grit_exp.data.schema import GritRow
    from grit_exp.hydra_app import CONF_DIR
    from grit_exp.models import build_adapter

    group = OmegaConf.load(CONF_DIR / "model" / "real_width_qwen2_5_vl.yaml")
    group.pop("defaults")
    group.path = str(grit_cache / "models" / "real_width_qwen2_5_vl")
    adapter = build_adapter(OmegaConf.merge(OmegaConf.structured(ModelConfig), group))
    image = tmp_path / "photo.png"
    Image.new("RGB", (640, 480), (90, 120, 200)).save(image)
    row = GritRow(question="How many?", answer="1", image=str(image), width=640, height=480, bboxs=[],
                  dataset="x", source="x.jsonl:1")
    prompt = adapter.build_prompt_batch([row], ["\nQuestion: How many?"])
    image_tokens = int((prompt.inputs["input_ids"] == 151655).sum())
    assert image_tokens <= 256 and image_tokens == int(prompt.inputs["image_grid_thw"].prod()) // 4  # paper bounds
    model = adapter.load_model("cpu")
    completion = torch.tensor([[9707, 1879, 151645]])
    logp = adapter.completion_logprobs(model, prompt, completion, torch.ones_like(completion))
    assert logp.shape == (1, 3) and torch.all(logp < 0) and torch.all(logp > -30)
