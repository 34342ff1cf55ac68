"""Gold chains in both box frames: exact text, paper-regex parsable, boxes map back within rounding."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grit_exp.data.gold_chain import format_gold_chain, gold_from_boxes, render_chain
from grit_exp.data.reader import DataFile, load_rows
from grit_exp.data.schema import GoldChain, GritRow
from grit_exp.data.synthetic import SyntheticParams, generate_synthetic
from grit_exp.grounding.boxes import parse_boxes
from grit_exp.grounding.frames import ImageGeometry

PAPER_BOX = re.compile(
    r"\b\d+,\s*\d+,\s*\d+,\s*\d+\b"
)  # the released code's regex, copied from the reference
CHAIN = re.compile(r"<think> (.+) </think>\n<rethink> (.+) </rethink>\n<answer> (.+) </answer>", re.DOTALL)

QWEN = ImageGeometry.for_qwen_pixels(640, 354, min_pixels=3136, max_pixels=256 * 28 * 28)  # input 588 x 308
INTERNVL = ImageGeometry.for_internvl(640, 354)


def _row(
    boxes: list[list[float]], labels: list[str], answer: str = "2", width: int = 640, height: int = 354
) -> GritRow:
    gold = GoldChain(boxes=boxes, labels=labels, rethink=f"There are {answer} tvs.", answer=answer)
    return GritRow(
        question="How many tvs?",
        answer=answer,
        image="/x.jpg",
        width=width,
        height=height,
        bboxs=boxes,
        dataset="tallyqa",
        source="t.jsonl:1",
        gold=gold,
    )


TWO_TVS = _row([[343.87, 94.03, 396.81, 126.06], [10, 20, 110, 220]], ["tv", "tv"])


def test_qwen_chain_exact_text() -> None:
    assert QWEN.input_width == 588 and QWEN.input_height == 308
    assert format_gold_chain(TWO_TVS, QWEN) == (
        '<think> {"bbox_2d": [316, 82, 365, 110]} {"bbox_2d": [9, 17, 101, 191]} </think>\n'
        "<rethink> There are 2 tvs. </rethink>\n<answer> 2 </answer>"
    )
    assert format_gold_chain(TWO_TVS, QWEN, include_labels=True).startswith(
        '<think> {"bbox_2d": [316, 82, 365, 110], "label": "tv"} {"bbox_2d": [9, 17, 101, 191], "label": "tv"} </think>'
    )


def test_internvl_chain_exact_text() -> None:
    assert format_gold_chain(TWO_TVS, INTERNVL) == (
        "<think> <ref>tv</ref><box>[[537, 266, 620, 356], [16, 56, 172, 621]]</box> </think>\n"
        "<rethink> There are 2 tvs. </rethink>\n<answer> 2 </answer>"
    )
    assert format_gold_chain(TWO_TVS, INTERNVL, include_labels=False).startswith(
        "<think> <box>[[537, 266, 620, 356], [16, 56, 172, 621]]</box> </think>"
    )
    mixed = _row(
        [[0, 0, 64, 35.4], [64, 35.4, 128, 70.8], [320, 177, 640, 354]], ["cat", "dog", "dog"], answer="yes"
    )
    assert format_gold_chain(mixed, INTERNVL).startswith(
        "<think> <ref>cat</ref><box>[[0, 0, 100, 100]]</box> <ref>dog</ref><box>[[100, 100, 200, 200], "
        "[500, 500, 1000, 1000]]</box> </think>"
    )


def test_a_chain_without_boxes_and_an_ovd_answer() -> None:
    assert format_gold_chain(_row([], [], answer="0"), QWEN).startswith("<think> none found </think>\n")
    ovd = _row([[64, 35.4, 128, 70.8]], ["cat"], answer="[64, 35.4, 128, 70.8]")
    assert format_gold_chain(ovd, INTERNVL).endswith(
        "<answer> [100, 100, 200, 200] </answer>"
    )  # answer in the frame too


def test_chains_parse_back_to_the_original_boxes(tmp_path: Path) -> None:
    paths = generate_synthetic(SyntheticParams(num_train=30, num_val=1, seed=11, image_size=100), tmp_path)
    rows = load_rows([DataFile(str(paths.train_jsonl), str(paths.image_root))])
    geometries = [ImageGeometry.for_qwen_pixels(100, 100, 3136, 12544), ImageGeometry.for_internvl(100, 100)]
    assert geometries[0].input_width == 112  # a real rescale: 100 px -> 112 px
    for row in rows:
        for geometry in geometries:
            for include_labels in (False, True):
                chain = format_gold_chain(row, geometry, include_labels=include_labels)
                think, rethink, answer = CHAIN.fullmatch(chain).groups()
                assert rethink == row.gold.rethink
                _assert_maps_back(PAPER_BOX.findall(think), row.gold.boxes, geometry)
                if row.answer_box is not None:
                    _assert_maps_back(PAPER_BOX.findall(answer), [row.answer_box], geometry)
                else:
                    assert answer == row.answer and not PAPER_BOX.search(answer)
                parsed = [
                    p for p in parse_boxes(chain) if p.section == "think"
                ]  # the toolkit's structured parser
                assert len(parsed) == len(row.gold.boxes)
                if include_labels:
                    assert [p.label for p in parsed] == row.gold.labels


def _assert_maps_back(found: list[str], boxes: list[list[float]], geometry: ImageGeometry) -> None:
    assert len(found) == len(boxes)
    for text, box in zip(found, boxes, strict=True):
        model_box = [int(v) for v in text.split(",")]
        back = geometry.model_to_original(model_box)
        if geometry.family == "internvl":
            tol_x, tol_y = 0.5 / 1000 * geometry.orig_width, 0.5 / 1000 * geometry.orig_height
        else:
            tol_x = 0.5 * geometry.orig_width / geometry.input_width
            tol_y = 0.5 * geometry.orig_height / geometry.input_height
        for i, (got, want) in enumerate(zip(back, box, strict=True)):
            assert abs(got - want) <= (tol_x if i % 2 == 0 else tol_y) + 1e-9, (text, box, geometry)


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(28, 3000),
    height=st.integers(28, 3000),
    fractions=st.lists(st.tuples(*[st.floats(0, 1)] * 4), min_size=1, max_size=5),
)
def test_any_image_size_round_trips_within_rounding(width: int, height: int, fractions: list) -> None:
    if max(width, height) / min(width, height) > 200:
        return
    boxes = [
        [min(a, c) * width, min(b, d) * height, max(a, c) * width, max(b, d) * height]
        for a, b, c, d in fractions
    ]
    row = _row(boxes, ["thing"] * len(boxes), width=width, height=height)
    for geometry in (
        ImageGeometry.for_qwen_pixels(width, height, 3136, 256 * 28 * 28),
        ImageGeometry.for_internvl(width, height),
    ):
        think = CHAIN.fullmatch(format_gold_chain(row, geometry)).group(1)
        _assert_maps_back(PAPER_BOX.findall(think), boxes, geometry)


def test_typical_synthetic_chain_stays_short() -> None:
    four = _row(
        [[1, 2, 20, 30], [30, 4, 60, 40], [70, 70, 90, 99], [5, 80, 25, 100]],
        ["red square"] * 4,
        width=112,
        height=112,
    )
    geometry = ImageGeometry.for_qwen_pixels(112, 112, 3136, 12544)
    assert len(format_gold_chain(four, geometry)) <= 200  # the longest counting chain (4 boxes) in characters


def test_errors_name_the_row() -> None:
    no_gold = GritRow(
        question="q",
        answer="a",
        image="/x",
        width=10,
        height=10,
        bboxs=[[0, 0, 5, 5]],
        dataset="vsr",
        source="v.jsonl:4",
    )
    with pytest.raises(ValueError, match=r"row 'v.jsonl:4' has no gold chain"):
        format_gold_chain(no_gold, ImageGeometry.for_internvl(10, 10))
    with pytest.raises(ValueError, match="geometry is for a 10 x 10 image but row 't.jsonl:1' is 640 x 354"):
        format_gold_chain(TWO_TVS, ImageGeometry.for_internvl(10, 10))
    generic = gold_from_boxes(no_gold)
    assert render_chain(generic, ImageGeometry.for_internvl(10, 10)) == (
        "<think> <box>[[0, 0, 500, 500]]</box> </think>\n<rethink> The answer is a. </rethink>\n<answer> a </answer>"
    )
