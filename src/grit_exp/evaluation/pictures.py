"""Pictures of evaluated samples: the image with the model's boxes and the ground-truth boxes (PIL only).

`draw_boxes` draws boxes given in original-image pixels onto a copy of an image resized for viewing
(the longer side brought into [448, 1024] pixels, so a 112 px synthetic image stays readable);
boxes are clipped to the image. `draw_numbered_boxes` also writes each box's number in a tag at its
corner (the same number the report and the demo put next to the box in the text), and `add_legend`
appends a band under the picture saying what each colour is. `sample_picture` draws one sample
record: ground truth in green, the OVD answer box in blue, the model's boxes (paper regex, exact
mapping: what GIoU measures) in red, numbered 1..k in the order written. `choose_pictured` picks
which samples get a picture: a seeded choice among the samples whose image exists, half of them
failures (`samples.failure_kinds`) when there are, in index order, independent of the number of
processes.

Left out: the report page (`html_report.py`), the consistency metric's image pairs (`consistency.py`
uses `draw_boxes` with one colour for both images).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from grit_exp.evaluation.samples import failure_kinds

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


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw_numbered_boxes(
    image: Image.Image, boxes: Sequence[Sequence[float] | None], scale: float, colors: Sequence[tuple[int, int, int]],
    orig_size: tuple[int, int], line_width: int = 3,
) -> list[int]:
    """Draw box i (1-based, original pixels) with the number i in a tag at its top-left corner, in
    colors[(i - 1) % len(colors)]; returns the numbers that were drawn (boxes enclosing nothing are not)."""
    draw = ImageDraw.Draw(image)
    tag_font = font(max(12, image.height // 16))
    drawn = []
    for number, box in enumerate(boxes, start=1):
        clipped = drawable(box, *orig_size)
        if clipped is None:
            continue
        color = colors[(number - 1) % len(colors)]
        x1, y1, x2, y2 = (v * scale for v in clipped)
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line_width)
        left, top, right, bottom = draw.textbbox((0, 0), str(number), font=tag_font)
        w, h = right - left + 6, bottom - top + 4
        tx, ty = x1, y1 - h if y1 - h >= 0 else y1  # above the box, or inside it at the top edge
        tx = min(tx, image.width - w)
        draw.rectangle([tx, ty, tx + w, ty + h], fill=color)
        draw.text((tx + 3 - left, ty + 2 - top), str(number), fill=(255, 255, 255), font=tag_font)
        drawn.append(number)
    return drawn


def add_legend(image: Image.Image, entries: Sequence[tuple[tuple[int, int, int], str]]) -> Image.Image:
    """The image with a white band below it listing (colour, meaning) entries, one per line."""
    legend_font = font(13)
    line_height = 18
    band = Image.new("RGB", (image.width, 6 + line_height * len(entries)), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for k, (color, text) in enumerate(entries):
        y = 4 + k * line_height
        draw.rectangle([6, y + 2, 20, y + 14], outline=color, width=3)
        draw.text((26, y), text, fill=(20, 20, 20), font=legend_font)
    out = Image.new("RGB", (image.width, image.height + band.height), (255, 255, 255))
    out.paste(image, (0, 0))
    out.paste(band, (0, image.height))
    return out


def sample_picture(record: dict[str, Any], out_path: Path) -> Path:
    """Write the picture of one sample record (`sample_image`) as PNG."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    sample_image(record).save(out_path, format="PNG")
    return out_path


def sample_image(record: dict[str, Any]) -> Image.Image:
    """The picture of one sample record: GT green, OVD answer box blue, model red and numbered, a
    legend band below."""
    image, scale = open_for_view(record["image"])
    size = (record["width"], record["height"])
    gt = draw_boxes(image, record["bboxs"], scale, GT_COLOR, size)
    legend = [(GT_COLOR, f"ground truth ({gt} box{'es' if gt != 1 else ''})")]
    if record.get("answer_box") is not None:
        draw_boxes(image, [record["answer_box"]], scale, ANSWER_BOX_COLOR, size)
        legend.append((ANSWER_BOX_COLOR, "answer box (ground truth)"))
    model_boxes = [b["original"] for b in record["paper_boxes"]]
    drawn = draw_numbered_boxes(image, model_boxes, scale, [MODEL_COLOR], size)
    legend.append((MODEL_COLOR, f"model boxes ({len(model_boxes)}), numbered as in the text" if model_boxes
                   else "model: no boxes"))
    if len(drawn) < len(model_boxes):
        legend.append((MODEL_COLOR, f"{len(model_boxes) - len(drawn)} box(es) outside or empty, not drawn"))
    return add_legend(image, legend)


def choose_pictured(records: list[dict[str, Any]], count: int, seed: int) -> list[int]:
    """Indices (into `records`) of up to `count` samples with an existing image, seeded, in order:
    up to half of them failures, the rest successes (either side fills in when the other is short)."""
    candidates = [i for i, r in enumerate(records) if not r["image_missing"]]
    if count >= len(candidates):
        return candidates
    rng = random.Random(f"pictures:{seed}")
    failed = [i for i in candidates if failure_kinds(records[i])]
    passed = [i for i in candidates if not failure_kinds(records[i])]
    take_failed = min(len(failed), max(count // 2, count - len(passed)))
    chosen = rng.sample(failed, take_failed) + rng.sample(passed, min(len(passed), count - take_failed))
    return sorted(chosen)


def picture_name(record: dict[str, Any]) -> str:
    return f"images/sample_{record['index']:06d}.png"
