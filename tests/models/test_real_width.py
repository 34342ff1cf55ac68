"""The real-width, reduced-depth Qwen2.5-VL-3B and InternVL3-2B: the published widths, the real vocabulary
and special ids, the paper's image geometry; built offline and run through the adapter (slow: ~2.2 GB)."""

from __future__ import annotations

import pytest

from grit_exp.models.real_width import (
    INTERNVL_SPECIAL_IDS,
    REAL_SPECIAL_IDS,
    internvl3_2b_config,
    qwen2_5_vl_3b_config,
    real_qwen2_tokenizer,
    real_width_internvl3_2b_config,
    real_width_qwen2_5_vl_config,
)


def test_the_config_has_the_real_widths_and_reduced_depth() -> None:
    config = real_width_qwen2_5_vl_config()
    text, vision = config.text_config, config.vision_config
    assert (text.hidden_size, text.intermediate_size, text.num_attention_heads, text.num_key_value_heads) == (2048, 11008, 16, 2)
    assert text.vocab_size == 151936 and text.num_hidden_layers == 2 and config.tie_word_embeddings
    assert text.rope_parameters["mrope_section"] == [16, 24, 24]
    assert (vision.hidden_size, vision.intermediate_size, vision.num_heads, vision.out_hidden_size) == (1280, 3420, 16, 2048)
    assert vision.depth == 2 and vision.fullatt_block_indexes == [1] and vision.window_size == 112  # block 0: window attention
    assert config.image_token_id == 151655 and config.vision_start_token_id == 151652


def test_at_full_depth_the_configs_are_the_published_models() -> None:
    import torch
    from transformers import InternVLForConditionalGeneration, Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        qwen = Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_3b_config())
        internvl = InternVLForConditionalGeneration(internvl3_2b_config())
    assert sum(p.numel() for p in qwen.parameters()) == 3_754_622_976  # Qwen2.5-VL-3B-Instruct
    # InternVL3-2B: 2.09 B (InternViT-300M + Qwen2.5-1.5B, untied head), plus one embedding row each for <video>
    assert 2.08e9 < sum(p.numel() for p in internvl.parameters()) < 2.10e9
    assert internvl.config.vision_config.num_hidden_layers == 24 and internvl.config.text_config.num_hidden_layers == 28


def test_the_internvl3_2b_twin_has_the_real_widths_and_shapes() -> None:
    import torch
    from transformers import InternVLForConditionalGeneration

    config = real_width_internvl3_2b_config()
    vision, text = config.vision_config, config.text_config
    assert (vision.hidden_size, vision.intermediate_size, vision.num_attention_heads) == (1024, 4096, 16)
    assert list(vision.image_size) == [448, 448] and list(vision.patch_size) == [14, 14] and vision.num_hidden_layers == 1
    assert (text.hidden_size, text.intermediate_size, text.num_attention_heads, text.num_key_value_heads) == (1536, 8960, 12, 2)
    assert text.num_hidden_layers == 2 and text.vocab_size == 151675 and not config.tie_word_embeddings
    assert config.image_token_id == INTERNVL_SPECIAL_IDS["<IMG_CONTEXT>"] == 151667
    assert config.image_seq_length == 256 and config.downsample_ratio == 0.5
    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
        features = model.get_image_features(pixel_values=torch.zeros(2, 3, 448, 448)).pooler_output
        logits = model.lm_head(torch.zeros(1, 5, 1536))
    assert features.shape == (2, 256, 1536)  # a 448 px tile: 32 x 32 patches, pixel shuffle 0.5 -> 256 tokens
    assert logits.shape == (1, 5, 151675)
    assert 0.55e9 < sum(p.numel() for p in model.parameters()) < 0.6e9


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


@pytest.mark.slow
def test_the_internvl3_2b_twin_builds_tiles_a_real_size_image_and_gives_logprobs(grit_cache, tmp_path) -> None:
    import torch
    from omegaconf import OmegaConf
    from PIL import Image

    from grit_exp.config import ModelConfig
    from grit_exp.data.schema import GritRow
    from grit_exp.hydra_app import CONF_DIR
    from grit_exp.models import build_adapter

    group = OmegaConf.load(CONF_DIR / "model" / "real_width_internvl3_2b.yaml")  # built on first use by its tiny_builder
    group.pop("defaults")
    group.path = str(grit_cache / "models" / "real_width_internvl3_2b")
    adapter = build_adapter(OmegaConf.merge(OmegaConf.structured(ModelConfig), group))
    assert adapter.tokenizer("Hello world")["input_ids"] == [9707, 1879]
    assert adapter.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>") == 151667
    image = tmp_path / "photo.png"
    Image.new("RGB", (896, 448), (90, 120, 200)).save(image)
    row = GritRow(question="How many?", answer="1", image=str(image), width=896, height=448, bboxs=[],
                  dataset="x", source="x.jsonl:1")
    prompt = adapter.build_prompt_batch([row], ["\nQuestion: How many?"])
    tiles = int(prompt.inputs["pixel_values"].shape[0])
    assert tiles == 3  # the paper's InternVL geometry: 2 tiles of 448 px + a thumbnail
    assert int((prompt.inputs["input_ids"] == 151667).sum()) == 256 * tiles
    model = adapter.load_model("cpu")
    completion = torch.tensor([[9707, 1879, INTERNVL_SPECIAL_IDS["<|im_end|>"]]])
    logp = adapter.completion_logprobs(model, prompt, completion, torch.ones_like(completion))
    assert logp.shape == (1, 3) and torch.all(logp < 0) and torch.all(logp > -30)
