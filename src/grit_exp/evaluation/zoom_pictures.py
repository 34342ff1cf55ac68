"""Pictures and HTML of zoom turns (issue #20): for each call that got a crop, the original image with the
crop's box drawn beside the crop itself, written under the evaluation's images/ for pictured samples,
and the turn list shown in report.html and the web demo.

Left out: the zoom metrics (`zoom_metrics.py`), drawing primitives (`pictures.py`).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from grit_exp.evaluation.pictures import GT_COLOR, add_legend, draw_boxes, open_for_view

CROP_COLOR = (240, 160, 0)


def turn_image(image_path: str, size: tuple[int, int], crop_box: list[float], gold: list[list[float]]) -> Image.Image:
    """The original (scaled for viewing) with the crop's box drawn, beside the crop itself at native
    resolution (scaled up to the same height), with a legend band."""
    view, scale = open_for_view(image_path)
    draw_boxes(view, gold, scale, GT_COLOR, size, line_width=2)
    draw_boxes(view, [crop_box], scale, CROP_COLOR, size)
    with Image.open(image_path) as original:
        x1, y1, x2, y2 = (round(v) for v in crop_box)
        crop = original.convert("RGB").crop((x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)))
    crop_scale = view.height / crop.height
    crop = crop.resize((max(1, round(crop.width * crop_scale)), view.height), Image.Resampling.NEAREST
                       if crop_scale >= 1 else Image.Resampling.BILINEAR)
    out = Image.new("RGB", (view.width + 8 + crop.width, view.height), (255, 255, 255))
    out.paste(view, (0, 0))
    out.paste(crop, (view.width + 8, 0))
    return add_legend(out, [(CROP_COLOR, "crop box on the original (left); the crop fed back (right)"),
                            (GT_COLOR, "ground truth")])


def write_turn_pictures(record: dict[str, Any], images_dir: Path) -> list[Path | None]:
    """One picture per call of a record (None for a call without a crop); sets each call's crop_file
    (relative to the evaluation directory)."""
    out: list[Path | None] = []
    zoom = record.get("zoom")
    if not zoom or record.get("image_missing"):
        return out
    for call in zoom["calls"]:
        if not call["ok"]:
            out.append(None)
            continue
        path = images_dir / f"sample_{record['index']:06d}_turn_{call['turn']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        turn_image(record["image"], (record["width"], record["height"]), call["crop_box"], record["bboxs"]).save(path, format="PNG")
        call["crop_file"] = f"{images_dir.name}/{path.name}"
        out.append(path)
    return out


def zoom_html(record: dict[str, Any], pictures: list[Path | None], picture_tag: Callable[[Path | None, str], str]) -> str:
    """The turns of one sample: each call's trigger, box, crop and its picture inline (report and demo)."""
    zoom = record.get("zoom")
    if not zoom:
        return ""
    if not zoom["calls"]:
        return "<p><b>Zoom turns:</b> none (answered from the first view)</p>"
    items = []
    for k, call in enumerate(zoom["calls"]):
        picture = pictures[k] if k < len(pictures) else None
        iou = f", IoU with ground truth {call['crop_iou']:.3f}" if call.get("crop_iou") is not None else ""
        head = (f"<p><b>Turn {call['turn']}</b>: <code>{html.escape(call['trigger_text'])}</code> &rarr; "
                + (f"crop {html.escape(str(call['crop_box']))}{iou}" if call["ok"]
                   else f"text reply: {html.escape(str(call['error']))}") + "</p>")
        items.append(head + (picture_tag(picture, f"turn {call['turn']}") if picture is not None else ""))
    return f'<div class="zoom"><p><b>Zoom turns ({zoom["num_crops"]} crop(s)):</b></p>{"".join(items)}</div>'
