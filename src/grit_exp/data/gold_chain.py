"""Render a row's structured gold chain as the text a model of one family should write.

The chain has the GRIT structure, kept short so that a tiny model can learn it on a CPU::

    <think> BOXES </think>
    <rethink> SENTENCE </rethink>
    <answer> ANSWER </answer>

BOXES are the gold boxes mapped from original pixels to the family's frame and rounded to ints:

- Qwen2.5-VL (resized-input pixels), one JSON object per box as in the paper's Qwen example:
  ``{"bbox_2d": [14, 20, 38, 44]} {"bbox_2d": [50, 8, 70, 30]}``; with labels,
  ``{"bbox_2d": [14, 20, 38, 44], "label": "red square"}``;
- InternVL ([0, 1000]-normalised), runs of boxes with the same label grouped as in the paper's
  InternVL example: ``<ref>red square</ref><box>[[125, 179, 339, 393], [446, 71, 625, 268]]</box>``;
  without labels, ``<box>[[...], ...]</box>``.

Labels default to off for Qwen (every label costs tokens) and on for InternVL (its grounding syntax
names the object). A chain without boxes says ``<think> none found </think>``. An answer that is a
box string (OVD rows) is mapped to the family's frame like the boxes. Every box matches the paper's
regex ``\\b\\d+,\\s*\\d+,\\s*\\d+,\\s*\\d+\\b``.

A chain of style ``box_list`` renders the few-shot SFT target instead, in the form the paper's SFT
prompt asks for ("First, output a lists of all necessary coordinates (bbox_2d) needed to answer the
question, then answer the question after <answer>."): the boxes as one list in the family's frame,
then the answer::

    [{"bbox_2d": [14, 20, 38, 44]}, {"bbox_2d": [50, 8, 70, 30]}]        (Qwen: resized-input pixels)
    <box>[[125, 179, 339, 393], [446, 71, 625, 268]]</box>               (InternVL: [0, 1000])
    <answer> ANSWER </answer>

RECONSTRUCTION: the paper did not release its SFT targets; `sft_gold` builds them from a GRIT_data
row's `bboxs` and `answer` in this form (no reasoning text: the released rows carry none).

Deliberately left out: deriving GRIT-style chains for rows without one (`gold_from_boxes` is the
explicit, generic fallback a caller may choose), tokenisation and chat templates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from grit_exp.data.schema import Box, GoldChain, GritRow
from grit_exp.data.validation import parse_box_string
from grit_exp.grounding.frames import ImageGeometry

EMPTY_THINK = "none found"


def box_to_model_ints(box: Sequence[float], geometry: ImageGeometry) -> list[int]:
    """An original-pixel box in the model's frame, each coordinate rounded half up to an int."""
    return [int(math.floor(v + 0.5)) for v in geometry.original_to_model(box, clip=True)]


def _int_list(values: Sequence[int]) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _qwen_think(boxes: list[list[int]], labels: list[str], include_labels: bool) -> str:
    parts = []
    for i, box in enumerate(boxes):
        label = f', "label": "{labels[i]}"' if include_labels and labels else ""
        parts.append(f'{{"bbox_2d": {_int_list(box)}{label}}}')
    return " ".join(parts)


def _internvl_think(boxes: list[list[int]], labels: list[str], include_labels: bool) -> str:
    if not include_labels or not labels:
        return "<box>[" + ", ".join(_int_list(b) for b in boxes) + "]</box>"
    groups: list[tuple[str, list[list[int]]]] = []
    for label, box in zip(labels, boxes, strict=True):
        if groups and groups[-1][0] == label:
            groups[-1][1].append(box)
        else:
            groups.append((label, [box]))
    return " ".join(
        f"<ref>{label}</ref><box>[" + ", ".join(_int_list(b) for b in group) + "]</box>"
        for label, group in groups
    )


def _box_list(boxes: list[list[int]], family: str) -> str:
    """The SFT target's list of boxes: Qwen's JSON list of {"bbox_2d": ...}, InternVL's <box>[[...], ...]</box>."""
    if family == "qwen2_5_vl":
        return "[" + ", ".join(f'{{"bbox_2d": {_int_list(b)}}}' for b in boxes) + "]"
    return "<box>[" + ", ".join(_int_list(b) for b in boxes) + "]</box>"


def format_gold_chain(row: GritRow, geometry: ImageGeometry, *, include_labels: bool | None = None) -> str:
    """The gold chain of `row` in `geometry`'s frame; `include_labels=None` takes the family default.

    Raises ValueError when the row has no gold chain or the geometry is for another image size.
    """
    if row.gold is None:
        raise ValueError(
            f"row {row.source or row.question!r} has no gold chain (only synthetic rows carry "
            "one); build one explicitly with gold_from_boxes(row) if a generic chain will do"
        )
    if (geometry.orig_width, geometry.orig_height) != (row.width, row.height):
        raise ValueError(
            f"geometry is for a {geometry.orig_width} x {geometry.orig_height} image but row "
            f"{row.source or row.question!r} is {row.width} x {row.height}"
        )
    return render_chain(row.gold, geometry, include_labels=include_labels)


def render_chain(gold: GoldChain, geometry: ImageGeometry, *, include_labels: bool | None = None) -> str:
    """Render a `GoldChain` (original pixels) in `geometry`'s frame; see the module docstring."""
    if include_labels is None:
        include_labels = geometry.family == "internvl"
    boxes = [box_to_model_ints(b, geometry) for b in gold.boxes]
    answer_box = parse_box_string(gold.answer, what="gold.answer")
    answer = _int_list(box_to_model_ints(answer_box, geometry)) if answer_box is not None else gold.answer
    if gold.style == "box_list":
        return f"{_box_list(boxes, geometry.family)}\n<answer> {answer} </answer>"
    if not boxes:
        think = EMPTY_THINK
    elif geometry.family == "qwen2_5_vl":
        think = _qwen_think(boxes, gold.labels, include_labels)
    else:
        think = _internvl_think(boxes, gold.labels, include_labels)
    return f"<think> {think} </think>\n<rethink> {gold.rethink} </rethink>\n<answer> {answer} </answer>"


def gold_from_boxes(row: GritRow) -> GoldChain:
    """A generic chain for a row without one: its `bboxs`, unlabelled, and "The answer is X." (OVD: "I found it.").

    Meant for supervised baselines on real GRIT_data rows, whose released files carry no reasoning.
    """
    boxes: list[Box] = [list(b) for b in row.bboxs]
    # an OVD answer is a box in original pixels: keep it out of the (unmapped) rethink sentence
    rethink = "I found it." if row.answer_box is not None else f"The answer is {row.answer}."
    return GoldChain(boxes=boxes, labels=[], rethink=rethink, answer=row.answer)


def sft_gold(row: GritRow) -> GoldChain:
    """The few-shot SFT target of a GRIT_data row (style "box_list"): its `bboxs`, then its answer.

    A RECONSTRUCTION: the paper's SFT targets were not released. Rows without boxes get an empty list.
    """
    return GoldChain(boxes=[list(b) for b in row.bboxs], labels=[], rethink="", answer=row.answer, style="box_list")
