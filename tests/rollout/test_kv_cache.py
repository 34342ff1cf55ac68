"""The in-place KV cache decodes exactly the tokens of transformers' DynamicCache (both model families)."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import load_dataset_splits
from grit_exp.models import build_adapter
from grit_exp.rollout.hf import HFRollout, only_these_settings
from grit_exp.rollout.kv_cache import InPlaceLayer, in_place_cache
from tests.helpers.configs import compose_config


@pytest.mark.parametrize("model", ["tiny_qwen2_5_vl", "tiny_internvl"])
def test_same_tokens_as_the_dynamic_cache(model, grit_cache, tiny_model_paths):
    cfg = compose_config("train", f"model={model}", "dataset.synthetic.num_train=8",
                         "dataset.synthetic.num_val=2", "rollout.max_new_tokens=24")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    policy = adapter.load_model("cpu")
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:3]]
    prompt = adapter.build_prompt_batch(rows[:3], texts)
    config = HFRollout(adapter, cfg.rollout).generation_config(greedy=True)
    outputs = {}
    for name, cache in (("dynamic", DynamicCache()), ("in_place", in_place_cache(24))):
        with only_these_settings(policy, config), torch.no_grad():
            outputs[name] = policy.generate(**prompt.inputs, generation_config=config, past_key_values=cache,
                                            return_dict_in_generate=True, output_scores=True)
        if name == "in_place":
            assert all(isinstance(layer, InPlaceLayer) for layer in cache.layers) and cache.layers
            assert cache.get_seq_length() == outputs[name].sequences.shape[1] - 1
    assert torch.equal(outputs["dynamic"].sequences, outputs["in_place"].sequences)
    for a, b in zip(outputs["dynamic"].scores, outputs["in_place"].scores, strict=True):
        assert torch.equal(a, b)


def test_growing_past_the_announced_room_keeps_every_entry():
    layer = InPlaceLayer(room=2)
    steps = [torch.randn(2, 1, 3 if i == 0 else 1, 4) for i in range(6)]
    for step in steps:
        keys, values = layer.update(step, -step)
    expected = torch.cat(steps, dim=-2)
    assert torch.equal(keys, expected) and torch.equal(values, -expected) and layer.get_seq_length() == 8
    layer.crop(-2)
    keys, _ = layer.update(steps[1], steps[1])
    assert torch.equal(keys, torch.cat([expected[..., :6, :], steps[1]], dim=-2))
