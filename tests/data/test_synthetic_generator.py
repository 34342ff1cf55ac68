"""The synthetic generator: byte-identical output per seed, exact tight boxes, caching, atomic writes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import grit_exp.data.synthetic as synthetic
from grit_exp.data.reader import DataFile, load_rows
from grit_exp.data.synthetic import GENERATOR_VERSION, SyntheticParams, ensure_synthetic, generate_synthetic
from grit_exp.data.synthetic_scenes import COLORS, RELATIONS
from grit_exp.data.tokenizer_corpus import tokenizer_corpus
from grit_exp.errors import DataError

SMALL = SyntheticParams(num_train=40, num_val=10, seed=3)


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = generate_synthetic(SMALL, tmp_path / "a")
    second = generate_synthetic(SMALL, tmp_path / "b")
    assert first.root.name == second.root.name == SMALL.fingerprint()
    files = _all_bytes(first.root)
    assert files == _all_bytes(second.root)
    assert sum(name.endswith(".png") for name in files) == 50
    other = generate_synthetic(SyntheticParams(num_train=40, num_val=10, seed=4), tmp_path / "a")
    assert other.root != first.root
    assert other.train_jsonl.read_bytes() != first.train_jsonl.read_bytes()


def test_fingerprint_covers_every_parameter_and_the_version(monkeypatch) -> None:
    variants = [
        SMALL,
        SyntheticParams(num_train=41, num_val=10, seed=3),
        SyntheticParams(num_train=40, num_val=10, seed=3, image_size=96),
        SyntheticParams(num_train=40, num_val=10, seed=3, kind_weights=(1, 0, 0)),
        SyntheticParams(num_train=40, num_val=10, seed=3, max_count=3),
        SyntheticParams(num_train=40, num_val=10, seed=3, count_targets=1),
    ]
    assert len({p.fingerprint() for p in variants}) == len(variants)
    before = SMALL.fingerprint()
    monkeypatch.setattr(synthetic, "GENERATOR_VERSION", GENERATOR_VERSION + 1)
    assert SMALL.fingerprint() != before


def test_rows_are_valid_grit_data_with_exact_proportions(tmp_path: Path) -> None:
    paths = generate_synthetic(SyntheticParams(num_train=50, num_val=10, seed=9), tmp_path)
    rows = load_rows(
        [DataFile(str(paths.train_jsonl), str(paths.image_root))]
    )  # the real reader validates them
    assert Counter(r.dataset for r in rows) == {"synth_count": 30, "synth_spatial": 10, "synth_ovd": 10}
    assert {r.split for r in rows} == {"train"}
    val = load_rows([DataFile(str(paths.val_jsonl), str(paths.image_root))])
    assert {r.split for r in val} == {"val"} and {r.question for r in val} != {r.question for r in rows[:10]}
    for row in rows:
        objects = row.extra["objects"]
        assert row.gold is not None and row.gold.boxes == row.bboxs
        if row.dataset == "synth_count":
            color, shape = row.question.removeprefix("How many ").removesuffix("s are there?").split()
            targets = [o["box"] for o in objects if (o["color"], o["shape"]) == (color, shape)]
            assert int(row.answer) == len(targets) == len(row.bboxs) and sorted(targets) == sorted(row.bboxs)
            assert 0 <= int(row.answer) <= 4 and row.gold.answer == row.answer
        elif row.dataset == "synth_ovd":
            assert row.answer_box == row.bboxs[0] and row.answer == "[{}, {}, {}, {}]".format(*row.bboxs[0])
        else:
            a, b = row.bboxs
            relation = next(r for r in RELATIONS if f" {r} the " in row.question)
            axis, sign = RELATIONS[relation]
            centre = [(a[axis] + a[axis + 2]) / 2, (b[axis] + b[axis + 2]) / 2]
            assert row.answer == ("yes" if sign * (centre[0] - centre[1]) < 0 else "no")
            assert abs(centre[0] - centre[1]) >= 7


def test_boxes_are_exact_and_tight(tmp_path: Path) -> None:
    paths = generate_synthetic(SMALL, tmp_path)
    for line in paths.train_jsonl.read_text().splitlines():
        row = json.loads(line)
        pixels = np.asarray(Image.open(paths.image_root / row["image"]).convert("RGB"))
        assert pixels.shape == (row["height"], row["width"], 3)
        for obj in row["objects"]:
            x1, y1, x2, y2 = obj["box"]
            assert all(isinstance(v, int) for v in obj["box"]) and x2 > x1 and y2 > y1
            # a one-pixel frame around the box holds no pixel of the shape: the box is tight and
            # (shapes are at least 2 px apart) nothing of another shape intrudes
            window = pixels[max(y1 - 1, 0) : y2 + 1, max(x1 - 1, 0) : x2 + 1]
            ys, xs = np.nonzero(np.all(window == COLORS[obj["color"]], axis=-1))
            oy, ox = max(y1 - 1, 0), max(x1 - 1, 0)
            assert [xs.min() + ox, ys.min() + oy, xs.max() + ox + 1, ys.max() + oy + 1] == [x1, y1, x2, y2]
            inside = pixels[y1:y2, x1:x2]
            is_color = np.all(inside == COLORS[obj["color"]], axis=-1)
            if obj["shape"] == "square":
                assert is_color.all()
            else:
                assert is_color[(y2 - y1) * 2 // 3, (x2 - x1) // 2]


def test_an_existing_set_is_reused_without_writing(tmp_path: Path, monkeypatch) -> None:
    from omegaconf import OmegaConf

    from grit_exp.config import SyntheticDataConfig

    cfg = OmegaConf.structured(
        SyntheticDataConfig(enabled=True, out_dir=str(tmp_path), num_train=6, num_val=3)
    )
    first = ensure_synthetic(cfg)

    def refuse(*args, **kwargs):
        raise AssertionError("regenerated an existing set")

    monkeypatch.setattr(synthetic, "_write_set", refuse)
    assert ensure_synthetic(cfg) == first


def test_a_failed_generation_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    real = synthetic.synthetic_rows

    def fail_on_val(params, split):
        if split == "val":
            raise RuntimeError("killed")
        return real(params, split)

    monkeypatch.setattr(synthetic, "synthetic_rows", fail_on_val)
    with pytest.raises(RuntimeError, match="killed"):
        generate_synthetic(SMALL, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_incomplete_set_folder_is_reported(tmp_path: Path) -> None:
    (tmp_path / SMALL.fingerprint()).mkdir()
    with pytest.raises(DataError, match="lacks train.jsonl, val.jsonl, params.json"):
        generate_synthetic(SMALL, tmp_path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_train": 0}, "num_train=0 must be >= 1"),
        ({"image_size": 20}, "image_size=20 must be >= 48"),
        ({"max_count": 10}, "max_count=10 must be in 0..9"),
        ({"kind_weights": (1, 1)}, "kind_weights="),
        ({"count_targets": 0}, r"dataset\.synthetic\.count_targets=0 must be in 1\.\.9"),
        ({"count_targets": 10}, r"count_targets=10 must be in 1\.\.9"),
    ],
)
def test_bad_parameters_are_named(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SyntheticParams(**changes)


def test_count_targets_narrows_the_counting_questions_only() -> None:
    narrow = SyntheticParams(num_train=60, num_val=10, seed=5, count_targets=1)
    wide = SyntheticParams(num_train=60, num_val=10, seed=5)
    narrow_rows = [row for row, _ in synthetic.synthetic_rows(narrow, "train")]
    wide_rows = [row for row, _ in synthetic.synthetic_rows(wide, "train")]
    counting = [r for r in narrow_rows if r["dataset"] == "synth_count"]
    assert counting and {r["question"] for r in counting} == {"How many red squares are there?"}
    for row in counting:  # the counted shapes are exactly the red squares in the picture
        reds = [o["box"] for o in row["objects"] if (o["color"], o["shape"]) == ("red", "square")]
        assert sorted(reds) == sorted(row["bboxs"]) and row["answer"] == str(len(reds))
    assert len({r["question"] for r in wide_rows if r["dataset"] == "synth_count"}) > 1
    others = [r["question"] for r in narrow_rows if r["dataset"] != "synth_count"]
    assert others == [r["question"] for r in wide_rows if r["dataset"] != "synth_count"]


def test_tokenizer_corpus_covers_both_frames_and_prompts() -> None:
    corpus = tokenizer_corpus(num_rows=20, prompt_texts=["SUFFIX TEXT"])
    assert corpus == tokenizer_corpus(num_rows=20, prompt_texts=["SUFFIX TEXT"])
    text = "\n".join(corpus)
    for piece in (
        "SUFFIX TEXT",
        '{"bbox_2d": [',
        "<ref>",
        "<box>[[",
        "<rethink>",
        "</answer>",
        "How many",
        "Where is the",
        "to the left of",
        "1000",
    ):
        assert piece in text, piece
