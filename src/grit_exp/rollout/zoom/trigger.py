"""Reading a zoom call: the last `open_tag ... close_tag` of a model turn, and the box inside it.

A box is four finite numbers x1, y1, x2, y2 in the model's own frame (Qwen2.5-VL: pixels of its resized
view of the prompt image; InternVL: 0-1000 of the image), written either as `[x1, y1, x2, y2]`
(`trigger_format=box`) or as a JSON object holding `"bbox_2d": [x1, y1, x2, y2]` (`bbox_2d_json`, GRIT's
and DeepEyes' spelling). Anything else is malformed: the call gets a text reply naming what was wrong,
never an exception. Left out: mapping to original pixels and cropping (`crop.py`).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_BOX = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")


@dataclass(frozen=True)
class Trigger:
    text: str  # open tag .. close tag as written (the close tag alone if the open tag is missing)
    box: tuple[float, float, float, float] | None
    error: str | None  # why `box` is None


def find_trigger(turn_text: str, open_tag: str, close_tag: str, trigger_format: str) -> Trigger:
    """The call that ends `turn_text` (the model's text since its last tool turn, ending with `close_tag`)."""
    end = turn_text.rfind(close_tag)
    if end < 0:
        return Trigger("", None, f"no {close_tag} in the turn")
    start = turn_text.rfind(open_tag, 0, end)
    if start < 0:
        return Trigger(close_tag, None, f"{close_tag} without {open_tag}")
    inner = turn_text[start + len(open_tag): end]
    text = turn_text[start: end + len(close_tag)]
    box, error = parse_box(inner, trigger_format)
    return Trigger(text, box, error)


def parse_box(inner: str, trigger_format: str) -> tuple[tuple[float, float, float, float] | None, str | None]:
    """(box, None) or (None, why) for the text between the tags."""
    if trigger_format == "bbox_2d_json":
        try:
            data = json.loads(inner.strip())
        except ValueError:
            return None, 'not JSON: write {"bbox_2d": [x1, y1, x2, y2]}'
        values = _find_key(data, "bbox_2d")
        if not isinstance(values, list) or len(values) != 4 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return None, 'no "bbox_2d": [x1, y1, x2, y2] of four numbers'
        box = tuple(float(v) for v in values)
    elif trigger_format == "box":
        matches = _BOX.findall(inner)
        if len(matches) != 1 or _BOX.sub("", inner).strip():
            return None, "write one box [x1, y1, x2, y2] between the tags"
        box = tuple(float(v) for v in matches[0])
    else:
        raise ValueError(f"rollout.zoom.trigger_format={trigger_format!r} is not valid; choose box or bbox_2d_json")
    if not all(math.isfinite(v) for v in box):
        return None, "the box's numbers must be finite"
    x1, y1, x2, y2 = box
    if not (x1 < x2 and y1 < y2):
        return None, "the box needs x1 < x2 and y1 < y2"
    return box, None  # type: ignore[return-value]


def _find_key(data: object, key: str) -> object:
    """The value of `key` anywhere in nested JSON (DeepEyes nests it under "arguments")."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    elif isinstance(data, list):
        for value in data:
            found = _find_key(value, key)
            if found is not None:
                return found
    return None
