"""Box parsing: the paper regex, the structured parser (labels, sections, kinds), degenerate boxes, speed."""

from __future__ import annotations

import pytest

from grit_exp.grounding.boxes import (
    count_paper_boxes,
    is_degenerate,
    normalize_box,
    parse_boxes,
    parse_paper_boxes,
)

QWEN_ICL = (
    '<think> Let me check them out \n{\n  "bbox_2d": [142, 314, 299, 447],\n  "label": "chair",\n'
    '  "bbox_2d": [0, 439, 58, 531],\n  "label": "chair"\n}\n \n</think>\n<rethink>\nthere are 2 chairs '
    "[1, 1, 2, 2]\n</rethink>\n<answer>\n(5, 6, 7, 8)\n</answer>"
)
INTERNVL_ICL = (
    "<think> Let me check them out <ref>chair</ref> <box>[[142, 314, 299, 447], [0, 439, 58, 531]]</box> "
    "</think>\n<rethink>\nok\n</rethink>\n<answer>\n5\n</answer>"
)


def test_paper_regex_by_hand():
    assert [b.box for b in parse_paper_boxes("a 1,2,3,4 b [5, 6, 7, 8] c 1, 2, 3, 4, 5, 6, 7, 8")] == [
        (1, 2, 3, 4),
        (5, 6, 7, 8),
        (1, 2, 3, 4),
        (5, 6, 7, 8),
    ]
    assert count_paper_boxes("[1.5, 2.5, 3.5, 4.5]") == 0
    assert count_paper_boxes("[1, 2, 3, 4] [1, 2, 3, 4]") == 2  # duplicates kept
    assert count_paper_boxes("x1, 2, 3, 4") == 0  # no word boundary before the 1
    assert count_paper_boxes("1,\n2,\n3,\n4") == 1
    assert count_paper_boxes("١٢, ٣, ٤, ٥") == 1  # Unicode \d, as in the original
    assert parse_paper_boxes("١٢, ٣, ٤, ٥")[0].box == (12.0, 3.0, 4.0, 5.0)
    assert count_paper_boxes("") == 0


def test_paper_boxes_sections():
    sections = [b.section for b in parse_paper_boxes(QWEN_ICL)]
    assert sections == ["think", "think", "rethink", "answer"]
    assert parse_paper_boxes(QWEN_ICL)[0].span == (QWEN_ICL.index("142"), QWEN_ICL.index("447") + 3)


def test_structured_qwen_json_labels_kinds_sections():
    boxes = parse_boxes(QWEN_ICL)
    assert [(b.box, b.label, b.kind, b.section) for b in boxes] == [
        ((142, 314, 299, 447), "chair", "bbox_2d", "think"),
        ((0, 439, 58, 531), "chair", "bbox_2d", "think"),
        ((1, 1, 2, 2), None, "bracket", "rethink"),
        ((5, 6, 7, 8), None, "paren", "answer"),
    ]


def test_structured_label_before_and_floats():
    text = '[{"label": "cat", "bbox_2d": [1.5, 2, 30.25, 40]}, {"bbox_2d": [-1, 0, 5, 5]}]'
    boxes = parse_boxes(text)
    assert [(b.box, b.label, b.kind, b.section) for b in boxes] == [
        ((1.5, 2.0, 30.25, 40.0), "cat", "bbox_2d", "none"),
        ((-1.0, 0.0, 5.0, 5.0), None, "bbox_2d", "none"),
    ]


def test_structured_internvl():
    boxes = parse_boxes(INTERNVL_ICL)
    assert [(b.box, b.label, b.kind) for b in boxes] == [
        ((142, 314, 299, 447), "chair", "internvl"),
        ((0, 439, 58, 531), "chair", "internvl"),
    ]
    unclosed = parse_boxes("<box>[[1, 2, 3, 4]]")
    assert unclosed[0].kind == "internvl" and unclosed[0].label is None


def test_structured_rejects_mismatched_brackets_and_bare_numbers():
    assert parse_boxes("[1, 2, 3, 4) (1, 2, 3, 4] 1, 2, 3, 4 [1, 2, 3] [1, 2, 3, 4, 5]") == []


def test_sections_unclosed_and_closing_tags():
    text = "<think> [1, 1, 2, 2] </rethink> [3, 3, 4, 4] <answer> [5, 5, 6, 6]"
    assert [b.section for b in parse_boxes(text)] == ["think", "none", "answer"]


def test_degenerate_boxes_kept_and_helpers():
    boxes = parse_paper_boxes("[30, 40, 10, 20] [5, 5, 5, 9]")
    assert [b.box for b in boxes] == [(30, 40, 10, 20), (5, 5, 5, 9)]  # as written
    assert all(b.degenerate for b in boxes)
    assert parse_boxes("[30, 40, 10, 20]")[0].degenerate
    assert normalize_box((30, 40, 10, 20)) == (10, 20, 30, 40)
    assert not is_degenerate(normalize_box((30, 40, 10, 20)))
    assert is_degenerate((0, 0, 0, 10))


def test_huge_numbers():
    huge = "9" * 400
    [paper] = parse_paper_boxes(f"{huge}, 1, 2, 3")
    assert paper.box[0] == float("inf")
    [structured] = parse_boxes(f"[{'1' * 30}, 1, 2, 3]")
    assert structured.box[0] == 1.1111111111111111e29


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        "1" * 100_000,
        "1, " * 33_000,
        "1," + " " * 100_000,
        "[1, 2, 3, " * 10_000,
        "<box>" * 20_000,
        '"bbox_2d": ' * 9_000 + "[1, 2, 3, 4]",
        '"label": "' * 10_000,
        "<ref>" * 20_000 + "<box>[[1, 2, 3, 4]]</box>",
        "[" + "1." * 50_000 + "]",
        "<think>" * 15_000,
    ],
)
def test_adversarial_inputs_are_fast(text):
    # linear-time regexes: each of these takes milliseconds; catastrophic backtracking would take hours
    parse_boxes(text)
    parse_paper_boxes(text)


@pytest.mark.timeout(10)
def test_thousands_of_boxes():
    text = "<think>" + '{"bbox_2d": [1, 2, 3, 4], "label": "cat"}, ' * 5000 + "</think>"
    assert len(parse_boxes(text)) == 5000
    assert count_paper_boxes(text) == 5000
