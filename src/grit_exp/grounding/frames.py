"""Coordinate frames of the boxes a model writes, and the one tested converter between them.

- Qwen2.5-VL writes absolute pixels of the *resized* image it receives (both sides multiples of 28,
  area within [min_pixels, max_pixels]); to map back: x * orig_width / input_width.
- InternVL3 writes [x1, y1, x2, y2] normalised to [0, 1000] of the full image: x / 1000 * orig_width.

`ImageGeometry` holds what a conversion needs and converts both ways with exact floats (one
multiplication and one division per coordinate, no rounding). `model_to_original_paper` reproduces
the authors' scoring convention instead (Qwen boxes unchanged, InternVL boxes truncated to ints).
`qwen_smart_resize` recomputes Qwen2-VL's resize rule (identical to transformers' `smart_resize`) so a
geometry can be rebuilt from the pixel limits when `image_grid_thw` is not at hand.

Left out: parsing boxes from text (`boxes.py`) and IoU (`metrics.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FAMILIES = ("qwen2_5_vl", "internvl")
INTERNVL_SCALE = 1000.0  # InternVL's normalised frame: [0, 1000] on both axes


def qwen_smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 3136, max_pixels: int = 256 * 28 * 28
) -> tuple[int, int]:
    """(resized_height, resized_width) that Qwen2-VL's image processor gives an image of that size.

    Both sides become multiples of `factor` (patch 14 x merge 2 = 28), the area lands within
    [min_pixels, max_pixels], the aspect ratio is kept as closely as possible. The arithmetic (Python's
    round-half-even `round`, floor/ceil on float quotients) is that of transformers' rule, so the
    result is the same integer pair. Aspect ratios above 200 raise ValueError, as there.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)} "
            f"(height={height}, width={width})"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _check_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    if len(box) != 4:
        raise ValueError(f"a box is [x1, y1, x2, y2]; got {len(box)} values: {list(box)!r}")
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1, y1, x2, y2


def _clip(box: list[float], width: float, height: float) -> list[float]:
    x1, y1, x2, y2 = box
    return [
        min(max(x1, 0.0), width),
        min(max(y1, 0.0), height),
        min(max(x2, 0.0), width),
        min(max(y2, 0.0), height),
    ]


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"ImageGeometry.{name} must be a positive int, got {value!r}")


@dataclass(frozen=True)
class ImageGeometry:
    """The sizes that map one model's box frame to the original image's pixels."""

    family: str  # "qwen2_5_vl" | "internvl"
    orig_width: int  # original image size in pixels (GritRow.width / height)
    orig_height: int
    input_width: int | None = None  # Qwen only: the resized frame the model sees = grid_w * 14
    input_height: int | None = None  # Qwen only: grid_h * 14

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"ImageGeometry.family={self.family!r} is not valid; choose one of {FAMILIES}")
        _positive_int("orig_width", self.orig_width)
        _positive_int("orig_height", self.orig_height)
        if self.family == "internvl":
            if self.input_width is not None or self.input_height is not None:
                raise ValueError(
                    "ImageGeometry(family='internvl') takes no input_width/input_height: InternVL boxes are "
                    f"normalised to [0, 1000]; got input size {self.input_width}x{self.input_height}"
                )
        elif (self.input_width is None) != (self.input_height is None):
            raise ValueError(
                f"ImageGeometry: give both input_width and input_height or neither, got "
                f"{self.input_width!r} and {self.input_height!r}"
            )
        elif self.input_width is not None:
            _positive_int("input_width", self.input_width)
            _positive_int("input_height", self.input_height)

    # ----------------------------------------------------------------------------- constructors

    @classmethod
    def for_qwen_grid(
        cls, orig_width: int, orig_height: int, image_grid_thw: Sequence[int], patch_size: int = 14
    ) -> ImageGeometry:
        """From the processor's `image_grid_thw` row (t, grid_h, grid_w) of this image."""
        if len(image_grid_thw) != 3:
            raise ValueError(f"image_grid_thw must be (t, grid_h, grid_w), got {list(image_grid_thw)!r}")
        _, grid_h, grid_w = (int(v) for v in image_grid_thw)
        return cls("qwen2_5_vl", orig_width, orig_height, grid_w * patch_size, grid_h * patch_size)

    @classmethod
    def for_qwen_pixels(
        cls,
        orig_width: int,
        orig_height: int,
        min_pixels: int,
        max_pixels: int,
        patch_size: int = 14,
        merge_size: int = 2,
    ) -> ImageGeometry:
        """By recomputing Qwen's smart resize from the processor's pixel limits."""
        height, width = qwen_smart_resize(
            orig_height,
            orig_width,
            factor=patch_size * merge_size,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
        )
        return cls("qwen2_5_vl", orig_width, orig_height, width, height)

    @classmethod
    def for_internvl(cls, orig_width: int, orig_height: int) -> ImageGeometry:
        return cls("internvl", orig_width, orig_height)

    # ----------------------------------------------------------------------------- conversions

    def _model_size(self) -> tuple[float, float]:
        """Width and height of the model's frame."""
        if self.family == "internvl":
            return INTERNVL_SCALE, INTERNVL_SCALE
        if self.input_width is None or self.input_height is None:
            raise ValueError(
                "this Qwen ImageGeometry has no input size: build it with ImageGeometry.for_qwen_grid or "
                "for_qwen_pixels to convert between frames (only model_to_original_paper works without it)"
            )
        return float(self.input_width), float(self.input_height)

    def model_to_original(self, box: Sequence[float], clip: bool = False) -> list[float]:
        """A box in the model's frame -> original-image pixels (exact floats; clipped to the image if asked)."""
        x1, y1, x2, y2 = _check_box(box)
        mw, mh = self._model_size()
        w, h = self.orig_width, self.orig_height
        out = [x1 * w / mw, y1 * h / mh, x2 * w / mw, y2 * h / mh]
        return _clip(out, w, h) if clip else out

    def original_to_model(self, box: Sequence[float], clip: bool = False) -> list[float]:
        """Original-image pixels -> the model's frame (exact floats; clipped to the frame if asked)."""
        x1, y1, x2, y2 = _check_box(box)
        mw, mh = self._model_size()
        w, h = self.orig_width, self.orig_height
        out = [x1 * mw / w, y1 * mh / h, x2 * mw / w, y2 * mh / h]
        return _clip(out, mw, mh) if clip else out

    def model_to_original_paper(self, box: Sequence[float]) -> list[float]:
        """The authors' scorer convention: Qwen boxes unchanged (no rescale, no clip); InternVL boxes
        as [int(x1 / 1000 * W), int(y1 / 1000 * H), int(x2 / 1000 * W), int(y2 / 1000 * H)].

        A coordinate too large for int truncation (an infinite float) is returned as it is.
        """
        x1, y1, x2, y2 = _check_box(box)
        if self.family == "qwen2_5_vl":
            return [x1, y1, x2, y2]
        w, h = self.orig_width, self.orig_height
        scaled = [
            x1 / INTERNVL_SCALE * w,
            y1 / INTERNVL_SCALE * h,
            x2 / INTERNVL_SCALE * w,
            y2 / INTERNVL_SCALE * h,
        ]
        return [float(int(v)) if math.isfinite(v) else v for v in scaled]

    # ----------------------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "orig_width": self.orig_width,
            "orig_height": self.orig_height,
            "input_width": self.input_width,
            "input_height": self.input_height,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageGeometry:
        known = {"family", "orig_width", "orig_height", "input_width", "input_height"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(
                f"ImageGeometry.from_dict: unknown keys {sorted(unknown)}; valid keys: {sorted(known)}"
            )
        missing = {"family", "orig_width", "orig_height"} - set(d)
        if missing:
            raise ValueError(f"ImageGeometry.from_dict: missing keys {sorted(missing)} in {d!r}")
        return cls(**d)
