"""GRPO with zoom turns on the tiny model, end to end. The training entry runs with `rollout.zoom.enabled=true`
(an untrained model rarely calls), and the real training loop (`run_training`) trains on completions that do
call: the sampler's choice is scripted so that every other completion writes a well-formed zoom call first
(the rest of every completion is the model's own sampling), the `reward=grit_zoom` preset's `zoom_format` term
then spreads the groups' rewards, and the update runs over completions holding crops: finite loss and KL,
the tool-turn log-prob path used."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import grit_exp.models.zoom_logprobs as zoom_logprobs
from grit_exp.config import validate_train
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler
from grit_exp.training.run import run_training
from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]
RUN = [
    "rollout.zoom.enabled=true", "trainer.max_steps=2", "trainer.warm_start_sft_steps=0",
    "dataset.synthetic.num_train=16", "dataset.synthetic.num_val=2", "trainer.prompts_per_step=2",
    "algorithm.num_generations=4", "trainer.micro_batch_size=4", "trainer.eval_on_start=false",
    "trainer.eval_every=100", "eval.sampled_k=0", "trainer.save_every=100", "rollout.max_new_tokens=32",
    "seed=2",
]


@pytest.mark.slow
def test_train_entry_runs_with_zoom_on(tmp_path, grit_cache, tiny_model_paths):
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache)}
    out = subprocess.run([sys.executable, "-m", "grit_exp.train", *RUN, f"hydra.run.dir={tmp_path / 'run'}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train/loss" in r] == [1, 2]


@pytest.mark.slow
def test_grpo_trains_on_completions_with_crops(tmp_path, grit_cache, tiny_model_paths, monkeypatch):
    cfg = compose_config("train", *RUN, "reward=grit_zoom", "rollout.temperature=1.0")
    validate_train(cfg)
    from grit_exp.models import build_adapter

    tokenizer = build_adapter(cfg.model).tokenizer
    call = tokenizer("<zoom>[10, 10, 60, 50]</zoom>", add_special_tokens=False)["input_ids"]
    written: dict[tuple[int, int], int] = {}
    draw = PerRowSeededSampler.draw

    def scripted_draw(self, scores, rows):
        chosen = draw(self, scores, rows).clone()  # the sampler draws for every row, as always
        for i, c in enumerate(rows):
            n = written.get((id(self), c), 0)
            if c % 2 == 0 and n < len(call):
                chosen[i] = call[n]
            written[(id(self), c)] = n + 1
        return chosen

    passes = []
    tool_turn_logprobs = zoom_logprobs.tool_turn_logprobs

    def counted(adapter, model, prompt, ids, mask, tool, temperature=1.0):
        passes.append(int(tool.tool_mask.sum()))
        return tool_turn_logprobs(adapter, model, prompt, ids, mask, tool, temperature)

    monkeypatch.setattr(PerRowSeededSampler, "draw", scripted_draw)
    monkeypatch.setattr(zoom_logprobs, "tool_turn_logprobs", counted)
    run = tmp_path / "run"
    run_training(cfg, run_dir=run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "train/loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert math.isfinite(r["train/loss"]) and math.isfinite(r["train/kl"])
        assert r["train/frac_zero_std"] < 1, r  # zoom_format spread the groups: there was an update
        assert r["train/reward/zoom_format"] > 0
    assert passes and all(n > 0 for n in passes), "the update ran over tool turns"
