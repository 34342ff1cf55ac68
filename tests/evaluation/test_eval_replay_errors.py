"""Replay input problems: bad lines name file:line (or are skipped and counted), missing images are counted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_replay_fixture import replay_overrides
from PIL import Image

from grit_exp.errors import DataError
from grit_exp.evaluation.runner import run_evaluation
from grit_exp.rollout.replay import read_replay

# the frame of lines without model_family / image_grid_thw: given explicitly, never guessed
QWEN_FRAME = dict(default_family="qwen2_5_vl", min_pixels=3136, max_pixels=12544)


def good(**changes) -> dict:
    row = {"question": "How many cats?", "answer": "2", "image": "img.png", "width": 64, "height": 32,
           "bboxs": [[0, 0, 10, 10]], "dataset": "tallyqa", "completion": "<answer>2</answer>"}
    row.update(changes)
    return row


def write(folder: Path, lines: list, image: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if image:
        Image.new("RGB", (64, 32)).save(folder / "img.png")
    path = folder / "replay.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.mark.parametrize(
    ("bad", "message", "reason"),
    [
        ('{"question": "x", ', "malformed JSON", "malformed_json"),
        (good(completion=None) | {"completion": 3}, "'completion' is int", "wrong_type"),
        ({k: v for k, v in good().items() if k != "completion"}, "missing field 'completion'", "missing_completion"),
        (good(model_family="llava"), "model_family='llava' is not valid", "bad_model_family"),
        (good(image_grid_thw=[1, 4]), "image_grid_thw is [1, 4]", "bad_image_grid_thw"),
        (good(model_family="internvl", image_grid_thw=[1, 4, 8]), "Qwen's resized frame only", "bad_image_grid_thw"),
        (good(bboxs=[[5, 5, 1, 1]]), "x1 > x2", "bad_box"),
        (good(width=65), "disagrees with the image", "size_mismatch"),
    ],
)
def test_a_bad_line_names_file_and_line(tmp_path, bad, message, reason):
    path = write(tmp_path, [good(), good(question="q2"), bad])
    with pytest.raises(DataError) as err:
        read_replay(path, **QWEN_FRAME)
    assert f"{path}:3" in str(err.value) and message in str(err.value)
    assert err.value.reason == reason
    items, skipped = read_replay(path, on_error="skip", **QWEN_FRAME)
    assert len(items) == 2 and skipped.total == 1 and skipped.counts == {reason: 1}


def test_missing_replay_file_is_named(tmp_path):
    with pytest.raises(DataError, match="no such replay file"):
        read_replay(tmp_path / "nope.jsonl")


def test_image_root_defaults_to_the_replay_folder_and_can_be_set(tmp_path):
    path = write(tmp_path / "a", [good()])
    (items, _) = read_replay(path, **QWEN_FRAME)
    assert items[0].row.image == str(tmp_path / "a" / "img.png") and not items[0].image_missing
    (items, _) = read_replay(path, image_root=tmp_path, default_family="internvl")
    assert items[0].image_missing  # img.png is not in tmp_path itself
    assert items[0].family == "internvl" and items[0].geometry.family == "internvl"


def test_skipped_lines_and_missing_images_are_counted_in_metrics(compose_eval, tmp_path):
    lines = [
        good(),  # image present
        good(question="How many dogs?", image="gone.png"),  # image missing: still scored (boxes need no pixels)
        "not json",
        good(question="How many cows?", completion=None) | {"completion": ["x"]},
    ]
    path = write(tmp_path / "replay", lines)
    cfg = compose_eval(*replay_overrides(path, "rollout.on_error=skip"))
    result = run_evaluation(cfg, tmp_path / "run")
    m = result.metrics
    assert m["tallyqa"]["n"] == 2 and m["tallyqa"]["missing_images"] == 1 and m["tallyqa"]["n_scored"] == 2
    assert m["tallyqa"]["acc"] == 1.0 and m["tallyqa"]["n_judged"] == 2
    assert m["_meta"]["replay"] == {"path": str(path), "skipped": 2,
                                    "skipped_by_reason": {"malformed_json": 1, "wrong_type": 1},
                                    "boxes_outside_frame": 0}
    samples = [json.loads(x) for x in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [s["image_missing"] for s in samples] == [False, True]
    assert samples[1]["metrics"]["giou_paper"] == 0.0  # "<answer>2</answer>" has no box; GT exists
    assert sorted(p.name for p in (tmp_path / "run" / "images").iterdir()) == ["sample_000000.png"]  # no picture without image


def test_on_error_raise_stops_at_the_bad_line(compose_eval, tmp_path):
    path = write(tmp_path / "replay", [good(), "not json"])
    cfg = compose_eval(*replay_overrides(path))
    with pytest.raises(DataError, match=r"replay\.jsonl:2: malformed JSON"):
        run_evaluation(cfg, tmp_path / "run")
