"""W&B tables carry each evaluated sample's picture (boxes drawn) next to its completion (offline run)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from grit_exp.training.logger import SAMPLE_COLUMNS, RunLogger


def record(index: int, image: Path, missing: bool = False) -> dict:
    return {
        "index": index, "dataset": "vsr", "question": f"Is it {index}?", "answer": "yes", "image": str(image),
        "image_missing": missing, "width": 64, "height": 32, "bboxs": [[30, 2, 60, 30]], "answer_box": None,
        "completion": "<think> [1, 1, 20, 20] </think><rethink>x</rethink><answer>no</answer>",
        "paper_boxes": [{"box": [1, 1, 20, 20], "section": "think", "original": [1.0, 1.0, 20.0, 20.0]}],
        "metrics": {"acc": 0.0, "giou": 0.1, "num_boxes": 1}, "reward": 0.5, "rewards": {"format": 0.5},
        "judge_failure": False,
    }


def test_samples_table_with_pictures_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    Image.new("RGB", (64, 32), (90, 90, 90)).save(tmp_path / "img.png")
    cfg = SimpleNamespace(kind="wandb", project="grit-exp-test", entity=None, mode="offline", log_every=1)
    logger = RunLogger(tmp_path, cfg, {"seed": 0}, total_steps=1)
    logger.log_samples("completions/step_0", [record(0, tmp_path / "img.png"), record(1, tmp_path / "gone.png", missing=True)])
    logger.close()

    # W&B logs a table with media as a run artifact: its table JSON and pictures are staged under
    # WANDB_DATA_DIR and named in the offline run's log (the run's files/ copy holds only the type names)
    staged = [p for p in (tmp_path / "wandb_data").rglob("*") if p.is_file()]
    tables = [json.loads(p.read_text()) for p in staged if p.read_bytes()[:1] == b"{" and b'"columns"' in p.read_bytes()]
    table = next(t for t in tables if t.get("_type") == "table")
    assert table["columns"] == list(SAMPLE_COLUMNS)
    first, second = table["data"]
    picture = first[SAMPLE_COLUMNS.index("picture")]
    assert picture["_type"] == "image-file" and (picture["width"], picture["path"][:13]) == (448, "media/images/")
    assert second[SAMPLE_COLUMNS.index("picture")] is None  # missing image: no picture
    assert first[SAMPLE_COLUMNS.index("completion")].startswith("<think> [1, 1, 20, 20]")
    assert first[SAMPLE_COLUMNS.index("failures")] == "wrong answer"
    pngs = [p for p in staged if p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"]
    assert len(pngs) == 1
    with Image.open(pngs[0]) as im:
        assert im.width == 448 and im.height > 224  # the picture with its legend band
    (log,) = (tmp_path / "wandb").rglob("run-*.wandb")
    assert picture["path"].encode() in log.read_bytes()  # the offline run names the picture for `wandb sync`
