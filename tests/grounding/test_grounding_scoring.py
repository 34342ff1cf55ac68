"""Per-sample grounding scores: the authors' convention vs the exact frame, Qwen and InternVL."""

from __future__ import annotations

import pytest

from grit_exp.data.schema import GritRow
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.grounding.scoring import grounding_scores, predicted_boxes


def row(bboxs, answer="tv", answer_box=None, width=640, height=480) -> GritRow:
    return GritRow(
        question="q",
        answer=answer,
        image="/x.jpg",
        width=width,
        height=height,
        bboxs=bboxs,
        dataset="vsr",
        source="t.jsonl:3",
        answer_box=answer_box,
    )


QWEN = ImageGeometry.for_qwen_grid(640, 480, (1, 26, 36))  # model frame 504 x 364


def test_qwen_paper_vs_rescaled():
    # the model writes the GT box [320, 240, 640, 480] in its 504 x 364 frame
    completion = "<think> [252, 182, 504, 364] </think>"
    scores = grounding_scores(completion, row([[320, 240, 640, 480]]), QWEN)
    assert scores.num_pred_boxes == 1
    assert scores.giou == 1.0
    # as written (authors): [252, 182, 504, 364] vs [320, 240, 640, 480]:
    # inter (504-320) x (364-240) = 184 x 124; union 252 x 182 + 320 x 240 - inter
    inter = 184 * 124
    assert scores.giou_paper == pytest.approx(inter / (252 * 182 + 320 * 240 - inter))
    assert scores.ovd_precision is None and scores.ovd_precision_paper is None


def test_internvl_truncation():
    g = ImageGeometry.for_internvl(640, 480)
    # [1, 1, 3, 3] -> exact [0.64, 0.48, 1.92, 1.44]; paper int() -> [0, 0, 1, 1]
    scores = grounding_scores("1, 1, 3, 3", row([[0, 0, 1, 1]]), g)
    assert scores.giou_paper == 1.0
    inter = (1 - 0.64) * (1 - 0.48)
    exact = inter / ((1.92 - 0.64) * (1.44 - 0.48) + 1.0 - inter)
    assert scores.giou == pytest.approx(exact)


def test_no_gt_no_prediction_and_ovd():
    assert grounding_scores("[1, 2, 3, 4]", row([]), QWEN).giou is None
    assert grounding_scores("no boxes", row([[0, 0, 1, 1]]), QWEN).giou_paper == 0.0
    ovd = row([[10, 20, 30, 40]], answer="[10, 20, 30, 40]", answer_box=[10, 20, 30, 40])
    scores = grounding_scores(
        "<answer> [10, 20, 30, 40] </answer>", ovd, ImageGeometry("qwen2_5_vl", 640, 480, 640, 480)
    )
    assert scores.ovd_precision == scores.ovd_precision_paper == 1.0


def test_overflowing_boxes_dropped_and_size_mismatch():
    text = ", ".join(["9" * 400] * 4) + " and 0, 0, 504, 364"
    assert predicted_boxes(text, QWEN, paper_convention=False) == [[0.0, 0.0, 640.0, 480.0]]
    assert grounding_scores(text, row([[0, 0, 640, 480]]), QWEN).giou == 1.0
    with pytest.raises(ValueError, match="t.jsonl:3: geometry size 640x480 differs from the row's 100x480"):
        grounding_scores("", row([[0, 0, 1, 1]], width=100), QWEN)
