"""Boxes parsed from model text: the paper's compatibility regex and a structured parser.

Two parsers, both returning `ParsedBox` records (box, section, label, span, kind):

- `parse_paper_boxes`: every match of the released code's regex ``\\b\\d+,\\s*\\d+,\\s*\\d+,\\s*\\d+\\b``
  anywhere in the text, duplicates kept, in order. This is what the authors' GIoU scorer and their
  box-format/count rewards count; `count_paper_boxes` gives the same number without building records.
  Like the original, ``\\d`` is Unicode-aware and the four numbers need not be inside brackets.
- `parse_boxes`: boxes written the ways models actually write them: ``"bbox_2d": [x1, y1, x2, y2]``
  (label from a ``"label": "..."`` in the same JSON object), ``[x1, y1, x2, y2]``, ``(x1, y1, x2, y2)``,
  InternVL's ``<ref>label</ref><box>[[...], [...]]</box>``; integers or decimals, optional minus sign.
  Bare ``1, 2, 3, 4`` without brackets is left to the paper parser.

Each box records the section it sits in: "think", "rethink", "answer" or "none". The section of a
position is set by the last tag before it: an opening tag enters its section, any closing tag
leaves to "none"; an unclosed tag runs to the next tag or the end of the text.

Degenerate boxes (x2 <= x1 or y2 <= y1: swapped corners or zero area) are kept as written by both
parsers: the paper counts them, and silently swapping corners would score a box the model did not
write. `is_degenerate` tells them apart; `normalize_box` swaps corners for callers who want that.
The metrics treat a degenerate box as the empty set. Coordinates are floats; a number too long for
a float becomes ``inf`` (the metrics helpers skip such boxes).

All regexes are linear-time on adversarial input (no nested quantifiers; context lookups use bounded
windows), so a 100k-character completion parses in well under a second.

Left out: coordinate frames (`frames.py`) and IoU (`metrics.py`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

SECTIONS = ("think", "rethink", "answer", "none")

PAPER_BOX_PATTERN = re.compile(r"\b\d+,\s*\d+,\s*\d+,\s*\d+\b")

_NUM = r"-?[0-9]+(?:\.[0-9]+)?"
_STRUCTURED_BOX = re.compile(
    rf"(?P<open>[\[(])\s*(?P<x1>{_NUM})\s*,\s*(?P<y1>{_NUM})\s*,\s*(?P<x2>{_NUM})\s*,\s*(?P<y2>{_NUM})\s*(?P<close>[\])])"
)
_SECTION_TAG = re.compile(r"<(/?)(think|rethink|answer)>")
_BOX_TAG = re.compile(r"<(/?)box>")
_BBOX2D_BEFORE = re.compile(r"[\"']bbox_2d[\"']\s*:\s*$")
_LABEL_AFTER = re.compile(r"\s*,\s*[\"']label[\"']\s*:\s*[\"']([^\"'\n]{0,200})[\"']")
_LABEL_BEFORE = re.compile(
    r"[\"']label[\"']\s*:\s*[\"']([^\"'\n]{0,200})[\"']\s*,\s*[\"']bbox_2d[\"']\s*:\s*$"
)
_REF_BEFORE = re.compile(r"<ref>([^<]{0,200})</ref>\s*$")
_WINDOW = 300  # characters looked at before a box for its key / label context


@dataclass(frozen=True)
class ParsedBox:
    box: tuple[float, float, float, float]  # [x1, y1, x2, y2] as written, in the model's frame
    section: str  # "think" | "rethink" | "answer" | "none"
    label: str | None  # from a JSON "label" or an InternVL <ref>; None when not given
    span: tuple[int, int]  # character offsets of the matched box text
    kind: str  # "paper" | "bbox_2d" | "internvl" | "bracket" | "paren"

    @property
    def degenerate(self) -> bool:
        return is_degenerate(self.box)


def is_degenerate(box: Sequence[float]) -> bool:
    """True when the box encloses no area: x2 <= x1 or y2 <= y1 (swapped corners included)."""
    x1, y1, x2, y2 = box
    return not (x2 > x1 and y2 > y1)


def normalize_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    """The box with its corners ordered (x1 <= x2, y1 <= y2); a zero-area box stays zero-area."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


class _Sections:
    """Maps a character offset to its section by bisecting the tag positions."""

    def __init__(self, text: str) -> None:
        self._ends: list[int] = []
        self._states: list[str] = []
        for m in _SECTION_TAG.finditer(text):
            self._ends.append(m.end())
            self._states.append("none" if m.group(1) else m.group(2))

    def at(self, pos: int) -> str:
        i = bisect.bisect_right(self._ends, pos) - 1
        return self._states[i] if i >= 0 else "none"


def count_paper_boxes(text: str) -> int:
    """Number of matches of the paper's integer-box regex in `text` (duplicates counted)."""
    return sum(1 for _ in PAPER_BOX_PATTERN.finditer(text))


def parse_paper_boxes(text: str) -> list[ParsedBox]:
    """Every match of the paper's regex, in order, duplicates kept (the authors' scorer's boxes)."""
    sections = _Sections(text)
    out = []
    for m in PAPER_BOX_PATTERN.finditer(text):
        x1, y1, x2, y2 = (float(part) for part in m.group(0).split(","))
        out.append(ParsedBox((x1, y1, x2, y2), sections.at(m.start()), None, m.span(), "paper"))
    return out


def _box_regions(text: str) -> list[tuple[int, int]]:
    """(start, end) of each <box>...</box> region; an unclosed <box> runs to the end of the text."""
    regions = []
    open_at: int | None = None
    for m in _BOX_TAG.finditer(text):
        if not m.group(1):
            if open_at is None:
                open_at = m.start()
        elif open_at is not None:
            regions.append((open_at, m.end()))
            open_at = None
    if open_at is not None:
        regions.append((open_at, len(text)))
    return regions


def parse_boxes(text: str) -> list[ParsedBox]:
    """Boxes in brackets/parentheses, JSON ``bbox_2d`` entries and InternVL ``<box>`` lists, in order."""
    sections = _Sections(text)
    regions = _box_regions(text)
    region_starts = [r[0] for r in regions]
    out = []
    for m in _STRUCTURED_BOX.finditer(text):
        if (m.group("open") == "[") != (m.group("close") == "]"):
            continue  # "[1, 2, 3, 4)" is not a box
        start, end = m.span()
        box = (float(m.group("x1")), float(m.group("y1")), float(m.group("x2")), float(m.group("y2")))
        before = text[max(0, start - _WINDOW) : start]
        label: str | None = None
        r = bisect.bisect_right(region_starts, start) - 1
        if r >= 0 and start < regions[r][1]:
            kind = "internvl"
            ref_window = text[max(0, regions[r][0] - _WINDOW) : regions[r][0]]
            ref = _REF_BEFORE.search(ref_window)
            label = ref.group(1).strip() if ref else None
        elif _BBOX2D_BEFORE.search(before[-64:]):
            kind = "bbox_2d"
            after = _LABEL_AFTER.match(text, end)
            if after:
                label = after.group(1)
            else:
                prior = _LABEL_BEFORE.search(before)
                label = prior.group(1) if prior else None
        else:
            kind = "bracket" if m.group("open") == "[" else "paren"
        out.append(ParsedBox(box, sections.at(start), label, (start, end), kind))
    return out
