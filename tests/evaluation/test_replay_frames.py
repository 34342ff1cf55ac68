"""Replay never guesses a box frame: it comes from the line (`image_grid_thw`, `model_family`) or from
an explicitly chosen real model config, else the run stops naming the key to set; boxes outside
their frame are warned about and counted."""

from __future__ import annotations

import json
import logging

import pytest
from PIL import Image

from grit_exp.errors import DataError
from grit_exp.evaluation.runner import run_evaluation

# 640 x 480: Qwen2.5-VL-3B's processor (max_pixels 256*28*28) resizes it to 504 x 364 (grid 26 x 36)
GT = [100, 100, 300, 300]
QWEN_BOX = [79, 76, 236, 228]  # GT in the 504 x 364 frame, rounded: back in pixels it is GT within 1 px
INTERNVL_BOX = [156, 208, 469, 625]  # GT in [0, 1000]


def write_replay(folder, **fields) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (640, 480)).save(folder / "img.png")
    line = {"question": "Where is the box?", "answer": "there", "image": "img.png", "width": 640, "height": 480,
            "bboxs": [GT], "dataset": "vsr", **fields}
    path = folder / "replay.jsonl"
    path.write_text(json.dumps(line) + "\n")
    return str(path)


def replay(compose_eval, path, tmp_path, *more):
    cfg = compose_eval("rollout=replay", f"rollout.path={path}", "eval.num_pictures=0", "judge.cache_path=null", *more)
    return run_evaluation(cfg, tmp_path / "run").metrics


def qwen_line(folder, **extra):
    return write_replay(folder, completion=f"<think> {json.dumps({'bbox_2d': QWEN_BOX})} </think> <answer>there</answer>",
                        **extra)


def test_qwen_line_without_grid_needs_a_real_model_config(compose_eval, tmp_path):
    path = qwen_line(tmp_path / "r", model_family="qwen2_5_vl")
    with pytest.raises(DataError, match=r"replay\.jsonl:1: .*image_grid_thw.*model=qwen2_5_vl_3b"):
        replay(compose_eval, path, tmp_path)  # the default model is the tiny demo model: its frame is nobody's
    metrics = replay(compose_eval, path, tmp_path, "model=qwen2_5_vl_3b")
    assert metrics["vsr"]["giou"] == pytest.approx(0.99, abs=0.01)


def test_qwen_line_with_grid_needs_no_model_config(compose_eval, tmp_path):
    path = qwen_line(tmp_path / "r", model_family="qwen2_5_vl", image_grid_thw=[1, 26, 36])
    assert replay(compose_eval, path, tmp_path)["vsr"]["giou"] == pytest.approx(0.99, abs=0.01)


def test_line_without_family_is_not_read_as_qwen(compose_eval, tmp_path):
    internvl = f"<think> <ref>box</ref><box>[{INTERNVL_BOX}]</box> </think> <answer>there</answer>"
    path = write_replay(tmp_path / "r", completion=internvl)
    with pytest.raises(DataError, match=r"replay\.jsonl:1: no 'model_family'.*model=internvl3_2b"):
        replay(compose_eval, path, tmp_path)
    assert replay(compose_eval, path, tmp_path, "model=internvl3_2b")["vsr"]["giou"] == pytest.approx(0.99, abs=0.01)
    path = write_replay(tmp_path / "r2", completion=internvl, model_family="internvl")
    assert replay(compose_eval, path, tmp_path)["vsr"]["giou"] == pytest.approx(0.99, abs=0.01)


def test_boxes_outside_the_frame_are_warned_about_and_counted(compose_eval, tmp_path, caplog):
    # boxes written in original pixels (600 > 504) while the line says the frame is 504 x 364
    completion = "<think> [100, 100, 300, 300] [400, 300, 600, 470] </think> <answer>there</answer>"
    path = write_replay(tmp_path / "r", completion=completion, model_family="qwen2_5_vl", image_grid_thw=[1, 26, 36])
    with caplog.at_level(logging.WARNING, logger="grit_exp.rollout.replay"):
        metrics = replay(compose_eval, path, tmp_path)
    assert "1 box(es) in 1 completion(s)" in caplog.text and "outside the model's frame" in caplog.text
    assert metrics["_meta"]["replay"]["boxes_outside_frame"] == 1
