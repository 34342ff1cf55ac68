"""Grounding: boxes parsed from model text, coordinate frames, and IoU-based metrics.

Nothing here imports torch: the rewards, the evaluation and the configuration checks all use it.
"""

from grit_exp.grounding.boxes import (
    PAPER_BOX_PATTERN,
    ParsedBox,
    count_paper_boxes,
    is_degenerate,
    normalize_box,
    parse_boxes,
    parse_paper_boxes,
)
from grit_exp.grounding.frames import ImageGeometry, qwen_smart_resize
from grit_exp.grounding.metrics import (
    OVD_IOU_THRESHOLDS,
    box_area,
    grounding_iou,
    iou,
    ovd_precision,
    union_area,
    union_iou,
)
from grit_exp.grounding.scoring import GroundingScores, grounding_scores, predicted_boxes

__all__ = [
    "OVD_IOU_THRESHOLDS",
    "PAPER_BOX_PATTERN",
    "GroundingScores",
    "ImageGeometry",
    "ParsedBox",
    "box_area",
    "count_paper_boxes",
    "grounding_iou",
    "grounding_scores",
    "iou",
    "is_degenerate",
    "normalize_box",
    "ovd_precision",
    "parse_boxes",
    "parse_paper_boxes",
    "predicted_boxes",
    "qwen_smart_resize",
    "union_area",
    "union_iou",
]
