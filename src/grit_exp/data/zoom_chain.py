"""The gold chain of a row as a zoom conversation (issue #20's warm start): what the model writes before and
after the crop it asks for, in the model family's frame.

With zoom turns on (`rollout.zoom`), a row whose gold chain has boxes becomes two model turns around one tool
turn::

    <think> {"bbox_2d": [14, 20, 38, 44]} </think>               (the GRIT think text, as gold_chain renders it)
    <zoom>[14, 20, 38, 44]</zoom>                                 (the trigger: the gold box in the model's frame)
        ... tool turn: the crop of the original image (rollout/zoom builds it, never this module) ...
    <rethink> SENTENCE </rethink>
    <answer> ANSWER </answer>

The zoomed box is the gold box, or the smallest box holding every gold box when there are several. The
trigger is written as `rollout.zoom.trigger_format` asks (`box`: ``[x1, y1, x2, y2]``; `bbox_2d_json`:
``{"bbox_2d": [...]}``) between its open and close tags. Left out: rows without gold boxes and `box_list` chains
(their chain stays the single-turn one), the tool turn itself and tokenisation (`algorithm/sft_zoom.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grit_exp.data.gold_chain import EMPTY_THINK, box_to_model_ints, render_chain
from grit_exp.data.schema import GritRow
from grit_exp.grounding.frames import ImageGeometry


@dataclass(frozen=True)
class ZoomChain:
    """The model-written text of a zoom conversation: the turn that ends with the trigger, then the answer turn."""

    first: str
    box: list[int]  # the zoomed box in the model's frame
    answer: str


def zoom_box(gold_boxes: list[list[float]], geometry: ImageGeometry) -> list[int]:
    """The box to zoom into (model frame, ints): the gold box, or the smallest one holding all gold boxes."""
    x1 = min(b[0] for b in gold_boxes)
    y1 = min(b[1] for b in gold_boxes)
    x2 = max(b[2] for b in gold_boxes)
    y2 = max(b[3] for b in gold_boxes)
    return box_to_model_ints([x1, y1, x2, y2], geometry)


def trigger_text(box: list[int], zoom: Any) -> str:
    """`<zoom>[x1, y1, x2, y2]</zoom>` (or `{"bbox_2d": [...]}` inside the tags) as `rollout.zoom` asks."""
    inner = "[" + ", ".join(str(v) for v in box) + "]"
    if str(zoom.trigger_format) == "bbox_2d_json":
        inner = f'{{"bbox_2d": {inner}}}'
    return f"{zoom.open_tag}{inner}{zoom.close_tag}"


def format_zoom_chain(row: GritRow, geometry: ImageGeometry, zoom: Any) -> ZoomChain | None:
    """The zoom conversation of `row` (see the module docstring); None when its gold chain has no boxes."""
    if row.gold is None:
        raise ValueError(f"row {row.source or row.question!r} has no gold chain (only synthetic rows carry one)")
    if not row.gold.boxes or row.gold.style != "grit":
        return None
    single = render_chain(row.gold, geometry)  # "<think> T </think>\n<rethink> R </rethink>\n<answer> A </answer>"
    think, sep, rest = single.partition("</think>\n")
    if not sep or EMPTY_THINK in think:  # cannot happen for a "grit" chain with boxes; kept as a guard
        raise ValueError(f"row {row.source or row.question!r}: its gold chain has no think turn to zoom from")
    box = zoom_box(row.gold.boxes, geometry)
    return ZoomChain(first=f"{think}</think>\n{trigger_text(box, zoom)}", box=box, answer=rest)
