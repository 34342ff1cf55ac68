"""The crop policy: a box in the model's frame -> a region of the ORIGINAL image, resized within bounds.

The box maps to original pixels through the prompt image's `ImageGeometry` (the one converter of
grit_exp.grounding.frames), is clipped to the image (a box with no area inside it is refused), padded by
`padding` pixels on every side, widened / heightened around its centre to at least `min_size` pixels (kept
inside the image), and rounded outwards to whole pixels. The crop is taken from the original image at its
native resolution and resized (aspect ratio kept, bicubic) only when its area falls outside
[crop_min_pixels, crop_max_pixels]. Left out: parsing the call (`trigger.py`), processing the crop into
model inputs (`turns.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image

from grit_exp.grounding.frames import ImageGeometry


def crop_box(box: Sequence[float], geometry: ImageGeometry, padding: int, min_size: int
             ) -> tuple[tuple[int, int, int, int] | None, str | None]:
    """((x1, y1, x2, y2) integer pixels of the original image, None) or (None, why the box cannot be cropped)."""
    width, height = geometry.orig_width, geometry.orig_height
    x1, y1, x2, y2 = geometry.model_to_original(box)
    cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    if not (cx1 < cx2 and cy1 < cy2):
        return None, "the box lies outside the image"
    cx1, cy1 = max(cx1 - padding, 0.0), max(cy1 - padding, 0.0)
    cx2, cy2 = min(cx2 + padding, float(width)), min(cy2 + padding, float(height))
    cx1, cx2 = _at_least(cx1, cx2, min_size, width)
    cy1, cy2 = _at_least(cy1, cy2, min_size, height)
    left, top = max(0, math.floor(cx1)), max(0, math.floor(cy1))
    right, bottom = min(width, math.ceil(cx2)), min(height, math.ceil(cy2))
    return (left, top, right, bottom), None


def _at_least(a: float, b: float, size: int, limit: int) -> tuple[float, float]:
    """[a, b] widened around its centre to min(size, limit), then shifted to lie within [0, limit]."""
    size = min(size, limit)
    if b - a < size:
        centre = (a + b) / 2
        a, b = centre - size / 2, centre + size / 2
    if a < 0:
        a, b = 0.0, b - a
    if b > limit:
        a, b = a - (b - limit), float(limit)
    return max(a, 0.0), min(b, float(limit))


def crop_image(image: Image.Image, box: tuple[int, int, int, int], min_pixels: int, max_pixels: int) -> Image.Image:
    """The region `box` of `image` (original pixels), resized (aspect kept) into [min_pixels, max_pixels] of area."""
    region = image.crop(box)
    w, h = region.size
    area = w * h
    if min_pixels <= area <= max_pixels:
        return region
    scale = math.sqrt((max_pixels if area > max_pixels else min_pixels) / area)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return region.resize(size, Image.Resampling.BICUBIC)
