"""What one zoom call of a completion was: the trigger the model wrote, the box it asked for, the crop it got
(or the text reply it got instead). Rollouts record one `ZoomCall` per tool turn; rewards and evaluation
read them (`Rollout.zoom_calls`).

Left out: parsing triggers and cropping (the other modules of grit_exp.rollout.zoom).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZoomCall:
    turn: int  # 1 for the first tool turn of the completion, 2 for the next, ...
    trigger_text: str  # the trigger exactly as the model wrote it
    box: tuple[float, float, float, float] | None  # x1, y1, x2, y2 as written, in the model's frame; None: malformed
    crop_box: tuple[int, int, int, int] | None  # pixels of the ORIGINAL image actually cropped (padding, min size)
    error: str | None = None  # the text reply given instead of a crop (malformed, outside the image, past max_turns)

    @property
    def ok(self) -> bool:
        """A crop was fed back (a well-formed call inside the image, within max_turns)."""
        return self.crop_box is not None and self.error is None
