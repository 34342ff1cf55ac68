"""The reader's validation: every kind of bad input names file:line; skip mode counts and warns once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from data_test_helpers import good_row, write_jsonl

from grit_exp.data.reader import DataError, DataFile, load_rows

BAD_ROWS = {
    "malformed_json": ('{"question": "x", ', "malformed JSON"),
    "not_an_object": ("[1, 2, 3]", "expected a JSON object per line"),
    "missing_field": (
        {k: v for k, v in good_row().items() if k != "bboxs"},
        "missing required field(s) 'bboxs'",
    ),
    "question_type": (good_row(question=5), "field 'question' is 5 (int); expected a string"),
    "answer_type": (
        good_row(answer=["2"]),
        "field 'answer' is ['2'] (list); expected a string (or an integer)",
    ),
    "width_type": (good_row(width="64"), "field 'width' is '64'; expected a positive integer"),
    "height_negative": (good_row(height=-48), "field 'height' is -48"),
    "dataset_type": (good_row(dataset=None), "field 'dataset' is None"),
    "bboxs_not_list": (
        good_row(bboxs="[1, 2, 3, 4]"),
        "field 'bboxs' is '[1, 2, 3, 4]'; expected a list of boxes",
    ),
    "box_three_numbers": (
        good_row(bboxs=[[1, 2, 3, 4], [1, 2, 3]]),
        "bboxs[1] is [1, 2, 3]; a box is a list of four",
    ),
    "box_with_text": (good_row(bboxs=[[1, 2, "3", 4]]), "bboxs[0] is [1, 2, '3', 4]"),
    "box_with_bool": (good_row(bboxs=[[1, 2, True, 4]]), "bboxs[0] is [1, 2, True, 4]"),
    "box_swapped": (good_row(bboxs=[[20, 2, 10, 4]]), "bboxs[0] is [20, 2, 10, 4]: x1 > x2"),
    "ovd_answer_three_numbers": (good_row(answer="[1, 2, 3]"), "answer '[1, 2, 3]' is [1, 2, 3]"),
    "missing_image": (good_row(image="nope.png"), "image 'nope.png' not found at"),
    "unreadable_image": (good_row(image="text.png"), "is not a readable image"),
    "size_mismatch": (good_row(width=65), "width x height = 65 x 48 disagrees with the image"),
    "bad_gold": (
        good_row(gold={"boxes": [[1, 2, 3]], "labels": [], "rethink": "", "answer": "2"}),
        "gold.boxes[0]",
    ),
    "gold_labels_count": (
        good_row(gold={"boxes": [[1, 2, 3, 4]], "labels": ["a", "b"], "rethink": "", "answer": "2"}),
        "gold.labels is ['a', 'b'] for 1 boxes",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_each_bad_input_names_file_line_and_the_problem(tmp_path: Path, image_root: Path, case: str) -> None:
    bad, expected = BAD_ROWS[case]
    data = write_jsonl(tmp_path / "rows.jsonl", [good_row(), "", bad])  # the bad row is on line 3
    with pytest.raises(DataError) as info:
        load_rows([DataFile(str(data), str(image_root))])
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(f"{data}:3: "), message
    assert expected in message, message


def test_skip_mode_counts_per_reason_and_warns_once(tmp_path: Path, image_root: Path, caplog) -> None:
    data = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            good_row(),
            "{broken",
            good_row(image="nope.png"),
            good_row(image="dog.png", width=32, height=32),
            good_row(image="gone.png"),
            good_row(width=1000),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="grit_exp.data.reader"):
        rows = load_rows([DataFile(str(data), str(image_root))], on_error="skip")
    assert [row.source for row in rows] == [f"{data}:1", f"{data}:4"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "skipped 4 bad row(s) of 6" in text
    assert f"missing_image: 2 ({data}:3, {data}:5)" in text
    assert f"malformed_json: 1 ({data}:2)" in text
    assert f"size_mismatch: 1 ({data}:6)" in text


def test_skip_mode_still_raises_for_a_missing_file(tmp_path: Path, image_root: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_rows([DataFile(str(tmp_path / "absent.jsonl"), str(image_root))], on_error="skip")


def test_unknown_on_error_is_rejected(tmp_path: Path, image_root: Path) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", [good_row()])
    with pytest.raises(DataError, match="dataset.on_error='ignore' is not valid"):
        load_rows([DataFile(str(data), str(image_root))], on_error="ignore")


def test_a_valid_row_is_read_completely(tmp_path: Path, image_root: Path) -> None:
    data = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            good_row(answer=3, width=64.0, note="kept", split="val"),
            {
                k: v
                for k, v in good_row(image="dog.png", width=32, height=32).items()
                if k not in ("split", "key_words")
            },
        ],
    )
    first, second = load_rows([DataFile(str(data), str(image_root))], default_split="test")
    assert first.answer == "3" and first.width == 64 and isinstance(first.width, int)
    assert first.image == str(image_root / "cat.png")
    assert first.bboxs == [[1, 2, 20, 30], [30.5, 4.25, 60, 40]]
    assert first.split == "val" and first.key_words == ["cats"] and first.extra == {"note": "kept"}
    assert first.answer_box is None and first.gold is None
    assert second.split == "test" and second.key_words is None and second.extra == {}


def test_image_size_reads_only_the_header(tmp_path: Path, image_root: Path) -> None:
    """A PNG cut short inside its pixel data still passes: the reader never decodes pixels."""
    full = (image_root / "cat.png").read_bytes()
    (image_root / "cut.png").write_bytes(full[: full.index(b"IDAT") + 8])
    data = write_jsonl(tmp_path / "rows.jsonl", [good_row(image="cut.png")])
    (row,) = load_rows([DataFile(str(data), str(image_root))])
    assert (row.width, row.height) == (64, 48)
