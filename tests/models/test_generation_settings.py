"""Rollouts and greedy evaluation use only the config tree's generation settings: whatever a
checkpoint's generation_config.json says (Qwen2.5-VL-3B-Instruct ships repetition_penalty 1.05) does
not change a single token, and the settings in effect are recorded in metrics.json and run_info.json."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from model_helpers import make_rows, model_cfg
from omegaconf import OmegaConf

from grit_exp.config import RolloutConfig
from grit_exp.models import build_adapter
from grit_exp.rollout.hf import HFRollout
from tests.helpers.configs import compose_config

# a checkpoint's leftovers that must have no effect (together they change greedy text if merged)
LEFTOVERS = {"repetition_penalty": 1.05, "no_repeat_ngram_size": 1, "top_k": 3, "min_new_tokens": 30,
             "temperature": 0.01, "num_beams": 1}


@pytest.fixture(scope="module")
def rollout_cfg():
    return OmegaConf.merge(OmegaConf.structured(RolloutConfig), {"max_new_tokens": 24, "stop_strings": []})


def _copy_with_leftovers(src, dst):
    shutil.copytree(src, dst)
    path = dst / "generation_config.json"
    config = json.loads(path.read_text())
    config.update(LEFTOVERS)
    path.write_text(json.dumps(config))
    return dst


@pytest.mark.parametrize("builder", ["tiny_qwen2_5_vl", "tiny_internvl"])
def test_checkpoint_generation_config_changes_nothing(builder, tiny_model_paths, tmp_path, rollout_cfg):
    clean = build_adapter(model_cfg(builder, tiny_model_paths[builder]))
    weird_dir = _copy_with_leftovers(tiny_model_paths[builder], tmp_path / "weird")
    weird = type(clean)(model_cfg(builder, weird_dir, tiny=False), str(weird_dir))
    rows = make_rows(tmp_path)
    texts = ["\nQuestion: How many?", "\nQuestion: Where?"]
    outputs = {}
    for name, adapter in (("clean", clean), ("weird", weird)):
        model = adapter.load_model("cpu")
        assert model.generation_config.repetition_penalty == (1.05 if name == "weird" else None) or name == "clean"
        rollout = HFRollout(adapter, rollout_cfg)
        greedy = rollout.generate(model, rows, texts, greedy=True)
        torch.manual_seed(0)
        sampled = rollout.generate(model, rows, texts, num_generations=2)
        outputs[name] = (greedy.completion_ids.tolist(), sampled.completion_ids.tolist())
        # the checkpoint's own settings are back on the model afterwards
        assert model.generation_config.no_repeat_ngram_size == (1 if name == "weird" else None)
    assert outputs["weird"] == outputs["clean"]


def test_effective_settings_are_explicit(tiny_model_paths, rollout_cfg):
    adapter = build_adapter(model_cfg("tiny_qwen2_5_vl", tiny_model_paths["tiny_qwen2_5_vl"]))
    rollout = HFRollout(adapter, rollout_cfg)
    sampled, greedy = rollout.settings(greedy=False), rollout.settings(greedy=True)
    assert sampled["do_sample"] and (sampled["temperature"], sampled["top_k"], sampled["top_p"]) == (0.9, 50, 1.0)
    assert not greedy["do_sample"] and greedy["temperature"] is None
    for settings in (sampled, greedy):
        assert settings["repetition_penalty"] == 1.0 and settings["no_repeat_ngram_size"] == 0
        assert settings["max_new_tokens"] == 24 and settings["eos_token_id"] == adapter.eos_token_ids
        assert settings["suppress_tokens"] == adapter.suppressed_token_ids
    config = rollout.generation_config(greedy=True)
    assert config.repetition_penalty == 1.0 and config.do_sample is False


def test_evaluation_records_the_settings_in_effect(tiny_model_paths, grit_cache, tmp_path):
    """metrics.json `_meta` and run_info.json say which settings decoded, even for a checkpoint with leftovers."""
    from grit_exp.evaluation.runner import run_evaluation

    weird_dir = _copy_with_leftovers(tiny_model_paths["tiny_qwen2_5_vl"], tmp_path / "weird")
    rows = make_rows(tmp_path, sizes=((112, 112),))
    data = tmp_path / "eval.jsonl"
    data.write_text(json.dumps({"question": "How many?", "answer": "1", "image": rows[0].image, "width": 112,
                                "height": 112, "bboxs": [[10, 10, 40, 40]], "dataset": "extra"}) + "\n")
    cfg = compose_config("eval", f"model.path={weird_dir}", "model.tiny_builder=null", "rollout.max_new_tokens=5",
                         "dataset.synthetic.enabled=false", f"dataset.eval=[{{path:{data},image_root:{tmp_path},name:extra}}]",
                         "eval.num_pictures=0", "judge.cache_path=null")
    run_evaluation(cfg, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "metrics.json").read_text())["_meta"]
    generation = meta["generation"]
    assert generation["do_sample"] is False and generation["repetition_penalty"] == 1.0
    assert generation["max_new_tokens"] == 5 and generation["no_repeat_ngram_size"] == 0
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())["generation"]
    assert info["greedy"]["repetition_penalty"] == 1.0 and info["sampling"]["temperature"] == 0.9
    assert "generation_config.json is ignored" in info["source"]
