"""Pictures of evaluated samples: the image with the model's boxes and the ground-truth boxes (PIL only).

`draw_boxes` draws boxes given in original-image pixels onto a copy of an image resized for viewing
(the longer side brought into [448, 1024] pixels, so a 112 px synthetic image stays readable);
boxes are clipped to the image. `sample_picture` draws one sample record: ground truth in green,
the OVD answer box in blue, the model's boxes (paper regex, exact mapping: what GIoU measures) in
red. `choose_pictured` picks which samples get a picture: a seeded choice among the samples whose
image exists, in index order, independent of the number of processes.

Left out: the report page (`html_report.py`), the consistency metric's image pairs (`consistency.py`
uses `draw_boxes` with one colour for both images).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

GT_COLOR = (0, 200, 0)
ANSWER_BOX_COLOR = (30, 90, 255)
MODEL_COLOR = (230, 20, 20)
MIN_SIDE, MAX_SIDE = 448, 1024


def view_scale(width: int, height: int) -> float:
    longer = max(width, height)
    if longer < MIN_SIDE:
        return MIN_SIDE / longer
    if longer > MAX_SIDE:
        return MAX_SIDE / longer
    return 1.0


def open_for_view(path: str) -> tuple[Image.Image, float]:
    """The image as RGB, resized for viewing, and the scale applied."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    scale = view_scale(*rgb.size)
    if scale != 1.0:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR)
    return rgb, scale


def drawable(box: Sequence[float] | None, width: float, height: float) -> list[float] | None:
    """The box clipped to the image, or None when it is not finite or encloses nothing after clipping."""
    if box is None or len(box) != 4 or not all(math.isfinite(v) for v in box):
        return None
    x1, y1, x2, y2 = (min(max(v, 0.0), lim) for v, lim in zip(box, (width, height, width, height), strict=True))
    return [x1, y1, x2, y2] if x2 > x1 and y2 > y1 else None


def draw_boxes(
    image: Image.Image, boxes: Sequence[Sequence[float] | None], scale: float, color: tuple[int, int, int],
    orig_size: tuple[int, int], line_width: int = 3,
) -> int:
    """Draw the boxes (original pixels) onto `image` (already scaled by `scale`); returns how many were drawn."""
    draw = ImageDraw.Draw(image)
    drawn = 0
    for box in boxes:
        clipped = drawable(box, *orig_size)
        if clipped is None:
            continue
        draw.rectangle([v * scale for v in clipped], outline=color, width=line_width)
        drawn += 1
    return drawn


def sample_picture(record: dict[str, Any], out_path: Path) -> Path:
    """Write the picture of one sample record (GT green, OVD answer box blue, model red) as PNG."""
    image, scale = open_for_view(record["image"])
    size = (record["width"], record["height"])
    draw_boxes(image, record["bboxs"], scale, GT_COLOR, size)
    if record.get("answer_box") is not None:
        draw_boxes(image, [record["answer_box"]], scale, ANSWER_BOX_COLOR, size)
    draw_boxes(image, [b["original"] for b in record["paper_boxes"]], scale, MODEL_COLOR, size)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    image.save(out_path, format="PNG")
    return out_path


def choose_pictured(records: list[dict[str, Any]], count: int, seed: int) -> list[int]:
    """Indices (into `records`) of up to `count` samples with an existing image, seeded, in order."""
    candidates = [i for i, r in enumerate(records) if not r["image_missing"]]
    if count >= len(candidates):
        return candidates
    return sorted(random.Random(f"pictures:{seed}").sample(candidates, count))


def picture_name(record: dict[str, Any]) -> str:
    return f"images/sample_{record['index']:06d}.png"
