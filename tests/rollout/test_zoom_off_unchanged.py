"""Zoom off (the default) leaves rollouts as they were: the decode loop of this tree gives the same tokens as
the decode loop before zoom turns existed (rollout/decode.py at the commit before #20's rollout, read from git),
greedy and seeded, with a stop string and rows ending at different steps; and a rollout with zoom off carries
no zoom fields."""

from __future__ import annotations

import subprocess
import types
from pathlib import Path

import pytest
import torch

from grit_exp.data.prompts import build_user_text
from grit_exp.rollout.decode import decode, greedy_tokens
from grit_exp.rollout.hf import HFRollout
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler, completion_seed
from grit_exp.rollout.stop_strings import StopStringsByTokenIds
from tests.helpers.zoom_script import zoom_test_model

ROOT = Path(__file__).resolve().parents[2]
BEFORE = "436129f"  # the last commit before zoom turns entered the decode loop
G, MAX_NEW = 3, 24


def _old_decode():
    try:
        source = subprocess.run(["git", "show", f"{BEFORE}:src/grit_exp/rollout/decode.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"no git history with commit {BEFORE} here")
    module = types.ModuleType("decode_before_zoom")
    exec(compile(source, "decode_before_zoom.py", "exec"), module.__dict__)
    return module.decode


@pytest.mark.parametrize("builder", ["tiny_qwen2_5_vl", "tiny_internvl"])
def test_zoom_off_decode_equals_the_decode_before_zoom(builder, grit_cache, tiny_model_paths):
    cfg, adapter, model, rows = zoom_test_model(builder, MAX_NEW, zoom=False)
    rows = sorted(rows, key=lambda r: len(r.question))[:: max(1, len(rows) // 3)][:3]
    prompts = adapter.build_prompt_batch(rows, [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows])
    stop = StopStringsByTokenIds(adapter.tokenizer, [adapter.tokenizer.decode([int(prompts.inputs["input_ids"][0, -3])])])
    old = _old_decode()
    for greedy in (True, False):
        outs = []
        for fn in (old, decode):
            seeds = [completion_seed(0, 1, p, g) for p in range(len(rows)) for g in range(G)]
            choose = greedy_tokens if greedy else PerRowSeededSampler(seeds, 0.9, 50, 1.0, torch.device("cpu")).draw
            outs.append(fn(model, model, prompts.inputs, G, MAX_NEW, choose, adapter.eos_token_ids,
                           adapter.pad_token_id, adapter.suppressed_token_ids, stop_rules=[stop]))
        assert torch.equal(outs[0], outs[1]), greedy
    rollout = HFRollout(adapter, cfg.rollout).generate(model, rows, ["How many?"] * len(rows), 2, greedy=True)
    assert rollout.zoom_calls is None and rollout.tool_turns is None
