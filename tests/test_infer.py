"""`python -m grit_exp.infer`: boxes printed in original pixels (hand-computed), the picture, the plumbing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.errors import ConfigError
from grit_exp.grounded_answer import BOX_COLORS, boxes_in_original
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.infer import check_inputs, format_result, run_inference
from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[1]

COMPLETION = (
    '<think> The cat is here {"bbox_2d": [10, 20, 110, 220], "label": "cat"} and a mat [0, 0, 320, 240]. </think>\n'
    "<rethink> a line [50, 60, 50, 90] </rethink>\n<answer> yes </answer>"
)


def test_qwen_boxes_are_printed_in_original_pixels():
    # Qwen frame: the model saw a 320 x 240 input of a 640 x 480 image: x and y are doubled
    geometry = ImageGeometry(family="qwen2_5_vl", orig_width=640, orig_height=480, input_width=320, input_height=240)
    text = format_result(COMPLETION, geometry)
    assert text.startswith("=== grounded reasoning ===\n<think> The cat is here")
    lines = text.splitlines()
    start = lines.index("=== 3 box(es) in original-image pixels (640 x 480) ===")
    assert lines[start + 1] == "1. [20.0, 40.0, 220.0, 440.0]  section=think  label='cat'  model frame [10.0, 20.0, 110.0, 220.0]"
    assert lines[start + 2] == "2. [0.0, 0.0, 640.0, 480.0]  section=think  model frame [0.0, 0.0, 320.0, 240.0]"
    assert lines[start + 3] == ("3. [100.0, 120.0, 100.0, 180.0]  section=rethink  model frame [50.0, 60.0, 50.0, 90.0]"
                                "  (degenerate: encloses nothing)")


def test_internvl_boxes_are_printed_in_original_pixels():
    # InternVL frame: [0, 1000] of the full image; 640 x 480: x * 0.64, y * 0.48
    geometry = ImageGeometry.for_internvl(640, 480)
    boxes = boxes_in_original("<think><ref>dog</ref><box>[[100, 200, 500, 1000]]</box></think>", geometry)
    assert boxes == [{"model_box": [100.0, 200.0, 500.0, 1000.0], "original": [64.0, 96.0, 320.0, 480.0],
                      "section": "think", "label": "dog", "degenerate": False}]
    assert "1. [64.0, 96.0, 320.0, 480.0]  section=think  label='dog'" in format_result("<think><ref>dog</ref><box>[[100, 200, 500, 1000]]</box></think>", geometry)


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (150, 90), (30, 200, 60)).save(path)
    return path


def test_missing_image_is_named(tmp_path):
    cfg = compose_config("app", f"image={tmp_path}/nope.jpg", "question=Why?")
    with pytest.raises(ConfigError, match=r"image='.*nope\.jpg': no such file"):
        check_inputs(cfg)


def test_inference_on_the_tiny_model_prints_what_it_saves(tmp_path, tiny_model_paths, capsys):
    image = _image(tmp_path)
    cfg = compose_config("app", f"image={image}", "question=How many green squares are there?", "rollout.max_new_tokens=12",
                         f"out={tmp_path}/pictures/boxes.png", "device=cpu")
    record = run_inference(cfg, tmp_path / "run")
    printed = capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "inference.json").read_text())
    assert saved == json.loads(json.dumps(record))
    geometry = ImageGeometry.from_dict(saved["geometry"])
    assert (geometry.family, geometry.orig_width, geometry.orig_height) == ("qwen2_5_vl", 150, 90)
    # the printed boxes are the completion's boxes mapped through the prompt's geometry
    assert saved["boxes"] == json.loads(json.dumps(boxes_in_original(saved["completion"], geometry)))
    assert printed == format_result(saved["completion"], geometry) + f"picture: {tmp_path}/pictures/boxes.png\n"
    assert "\nQuestion: How many green squares are there? First, think between <think>" in saved["user_text"]
    with Image.open(tmp_path / "pictures" / "boxes.png") as im:  # the web app's picture: 150 px shown at 448
        assert im.width == 448 and im.height > round(90 * 448 / 150)  # a legend band below the image
        legend = [im.convert("RGB").getpixel((x, y)) for x in range(30) for y in range(269, im.height)]
        assert (BOX_COLORS[0] in legend) == bool(saved["boxes"])


@pytest.mark.slow
def test_infer_command_line(tmp_path, tiny_model_paths):
    image = _image(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "grit_exp.infer", f"image={image}", "question=Is the square green?",
         "rollout.max_new_tokens=8", f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "=== grounded reasoning ===" in out.stdout and f"picture: {tmp_path}/run/boxes.png" in out.stdout
    assert (tmp_path / "run" / "boxes.png").is_file() and (tmp_path / "run" / "inference.json").is_file()
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()
