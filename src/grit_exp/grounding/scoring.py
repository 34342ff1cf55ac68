"""Per-sample grounding scores of one completion against one dataset row.

`grounding_scores(completion, row, geometry)` reports each metric twice:

- `*_paper`: the authors' scorer convention. Predicted boxes are every match of the paper regex
  anywhere in the completion; Qwen boxes are compared as written (no rescaling from the resized
  input frame, no clipping), InternVL boxes are mapped with int truncation.
- without suffix: the same boxes mapped exactly into original-image pixels (Qwen rescaled by
  orig / input size, InternVL by x / 1000 * size without truncation), also unclipped, so the two
  numbers differ only by the frame.

GIoU uses `row.bboxs` (None when the row has none: the sample is skipped); the OVD set precision
uses the row's answer box (`row.answer_box`, None for non-OVD rows). A predicted box whose mapped
coordinates overflow a float (a 400-digit "coordinate") is dropped before scoring.

Left out: averaging over samples and deduplication (evaluation's job).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from grit_exp.data.schema import GritRow
from grit_exp.grounding.boxes import count_paper_boxes, parse_paper_boxes
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.grounding.metrics import grounding_iou, ovd_precision


@dataclass(frozen=True)
class GroundingScores:
    num_pred_boxes: int  # paper-regex matches in the completion (duplicates counted)
    giou_paper: float | None
    giou: float | None
    ovd_precision_paper: float | None
    ovd_precision: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _finite(boxes: Sequence[Sequence[float]]) -> list[list[float]]:
    return [list(b) for b in boxes if all(math.isfinite(v) for v in b)]


def predicted_boxes(completion: str, geometry: ImageGeometry, paper_convention: bool) -> list[list[float]]:
    """The paper-regex boxes of `completion` in original-image pixels (authors' or exact mapping)."""
    raw = [p.box for p in parse_paper_boxes(completion)]
    if paper_convention:
        return _finite([geometry.model_to_original_paper(b) for b in raw])
    return _finite([geometry.model_to_original(b) for b in raw])


def grounding_scores(completion: str, row: GritRow, geometry: ImageGeometry) -> GroundingScores:
    """GIoU and OVD precision of one completion, in the authors' convention and in the exact frame."""
    if (geometry.orig_width, geometry.orig_height) != (row.width, row.height):
        raise ValueError(
            f"{row.source or row.image}: geometry size {geometry.orig_width}x{geometry.orig_height} differs "
            f"from the row's {row.width}x{row.height}"
        )
    paper = predicted_boxes(completion, geometry, paper_convention=True)
    exact = predicted_boxes(completion, geometry, paper_convention=False)
    gt = [list(b) for b in row.bboxs]
    answer_box = [list(row.answer_box)] if row.answer_box is not None else []
    return GroundingScores(
        num_pred_boxes=count_paper_boxes(completion),
        giou_paper=grounding_iou(paper, gt),
        giou=grounding_iou(exact, gt),
        ovd_precision_paper=ovd_precision(paper, answer_box),
        ovd_precision=ovd_precision(exact, answer_box),
    )
