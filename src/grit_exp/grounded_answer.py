"""A loaded model that answers (image, question) with grounded reasoning, for the web demo.

`GroundedAnswerer` builds the adapter and loads the model once, then for each request does what
`grit_exp.infer` and evaluation do: a `GritRow` for the image, the user text from the configured
prompt (`build_user_text`), one greedy `HFRollout.generate`, the boxes from `parse_boxes` mapped to
original pixels (`infer.boxes_in_original`), the answer from `<answer>` (`answer_text`, as the judge
reads it). `picture` draws the boxes numbered 1..k with a legend inside the image
(`evaluation.pictures`); `reasoning_html` puts the same numbers, in the same colours, in front of
each box in the text (`evaluation.html_report.boxes_html`).

Left out: the page itself (`demo.py`), judging (there is no ground truth), batches (use evaluate).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from grit_exp.evaluation.html_report import boxes_html
from grit_exp.evaluation.pictures import add_legend, draw_numbered_boxes, open_for_view
from grit_exp.grounding.boxes import parse_boxes
from grit_exp.infer import BOX_COLORS, boxes_in_original, warn_if_random
from grit_exp.rewards.answer_terms import answer_text

LEGEND_ROWS = 8  # boxes listed one per line in the picture's legend; more are summed up in one line


@dataclass
class GroundedAnswer:
    question: str
    user_text: str
    completion: str
    answer: str | None  # the text between <answer> and </answer>; None when there is none
    boxes: list[dict[str, Any]]  # infer.boxes_in_original entries plus "span" (their place in the completion)
    width: int
    height: int


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


class GroundedAnswerer:
    """The adapter and model of `cfg` (conf/web_demo.yaml: model, prompt, rollout, seed, device), loaded once."""

    def __init__(self, cfg: Any) -> None:
        import torch

        from grit_exp.models import build_adapter
        from grit_exp.rollout.hf import HFRollout

        self.cfg = cfg
        torch.manual_seed(int(cfg.seed))
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else str(cfg.device)
        self.adapter = build_adapter(cfg.model, int(cfg.seed))
        self.random_init = warn_if_random(self.adapter, cfg)
        self.model = self.adapter.load_model(device)
        self.model.eval()
        self.rollout = HFRollout(self.adapter, cfg.rollout)
        self.lock = threading.Lock()  # one generate at a time: the page may get concurrent requests

    def answer(self, image_path: str | Path, question: str) -> GroundedAnswer:
        from grit_exp.data.prompts import build_user_text
        from grit_exp.data.schema import GritRow

        image = Path(image_path)
        with Image.open(image) as im:
            width, height = im.size
        row = GritRow(question=question, answer="", image=str(image.resolve()), width=width, height=height,
                      bboxs=[], dataset="demo", split="demo", source="web demo")
        user_text = build_user_text(question, self.cfg.prompt, self.adapter.family)
        with self.lock:
            result = self.rollout.generate(self.model, [row], [user_text], num_generations=1, greedy=True)
        completion, geometry = result.texts[0], result.prompt.geometries[0]
        boxes = [{**box, "span": list(parsed.span)}
                 for box, parsed in zip(boxes_in_original(completion, geometry), parse_boxes(completion), strict=True)]
        return GroundedAnswer(question, user_text, completion, answer_text(completion), boxes, width, height)


def picture(image_path: str | Path, result: GroundedAnswer) -> Image.Image:
    """The image (resized for viewing) with box i outlined and tagged "i" in BOX_COLORS, and a legend band."""
    image, scale = open_for_view(str(image_path))
    drawn = set(draw_numbered_boxes(image, [b["original"] for b in result.boxes], scale, BOX_COLORS,
                                    (result.width, result.height)))
    legend = []
    for number, box in enumerate(result.boxes[:LEGEND_ROWS], start=1):
        if box["label"]:
            what = str(box["label"])
        else:
            what = f"in <{box['section']}>" if box["section"] != "none" else "outside the tags"
        state = "" if number in drawn else " (encloses nothing: not drawn)"
        legend.append((BOX_COLORS[(number - 1) % len(BOX_COLORS)], f"box {number}: {what}{state}"))
    if len(result.boxes) > LEGEND_ROWS:
        legend.append(((90, 90, 90), f"... and {len(result.boxes) - LEGEND_ROWS} more, numbered as in the text"))
    if not result.boxes:
        legend.append(((90, 90, 90), "the model wrote no boxes"))
    return add_legend(image, legend)


def reasoning_html(result: GroundedAnswer) -> str:
    """The completion, escaped, with each box's number in its colour in front of it (as in the picture)."""
    spans = [tuple(b["span"]) for b in result.boxes]
    colors = [hex_color(c) for c in BOX_COLORS]
    return ('<pre class="grounded-reasoning" style="white-space:pre-wrap;word-break:break-word">'
            f"{boxes_html(result.completion, spans, colors)}</pre>")
