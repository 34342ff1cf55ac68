"""The paper's "Vision-Language Reasoning Cross-Modal Correlation" (reasoning-grounding consistency).

For each sample with an image, at least one drawable predicted box and some reasoning text, and
for each of `repeats` repeats:

- the model's boxes (paper regex, mapped exactly to original pixels, clipped) are drawn on one copy
  of the image, the same number of random boxes on another, in the same colour and line width;
  each random box has the size of one model box and a uniform random position inside the image
  (the paper does not say how its random boxes were drawn; matching sizes keeps box size from
  giving the answer away);
- which copy is "Image 0" is a fair coin; coin and positions come from a generator seeded by
  (seed, repeat, sample index), so they do not depend on the number of processes;
- the reasoning is the completion before `<answer>` with every coordinate removed (bracketed and
  bare box numbers, `"bbox_2d":` keys, `<box>` tags, section tags), sent with both images to the
  vision judge in the paper's prompt (`grit_exp.judge.vision`).

A repeat's score is the fraction of its judged trials where the judge chose the model's image
(failed trials are excluded and counted). The metric is the mean and the sample standard deviation
(n - 1) of the repeats' scores. With `judge=rules` no vision judge exists and the metric is the
string "unavailable: judge=rules", never a number.

Left out: the HTTP client (`grit_exp.judge.vision`), which datasets the paper reported it on (all
datasets get it here; the paper used VSR, TallyQA, GQA, MME and MathVista).
"""

from __future__ import annotations

import io
import random
import re
import statistics
from typing import Any

from grit_exp.evaluation.pictures import MODEL_COLOR, draw_boxes, drawable, open_for_view
from grit_exp.grounding.boxes import parse_boxes, parse_paper_boxes
from grit_exp.judge.vision import VisionChoiceRequest, consistency_prompt

UNAVAILABLE_RULES = "unavailable: judge=rules"
CHUNK = 16  # samples whose image pairs are held in memory at once

_BBOX_KEY = re.compile(r"[\"']bbox_2d[\"']\s*:\s*,?")
_TAGS = re.compile(r"</?(?:think|rethink|box|ref)>")
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def strip_coordinates(completion: str) -> str:
    """The reasoning (text before `<answer>`) with all box coordinates and structural tags removed."""
    reasoning = completion.split("<answer>", 1)[0]
    spans = sorted({b.span for b in parse_boxes(reasoning)} | {b.span for b in parse_paper_boxes(reasoning)})
    kept, position = [], 0
    for start, end in spans:
        if start >= position:
            kept.append(reasoning[position:start])
            position = end
        elif end > position:
            position = end
    kept.append(reasoning[position:])
    text = _TAGS.sub(" ", _BBOX_KEY.sub("", "".join(kept)))
    text = text.replace("[]", " ").replace("[ ]", " ").replace("[, ]", " ")
    return _BLANK_LINES.sub("\n", _SPACES.sub(" ", text)).strip()


def model_boxes(record: dict[str, Any]) -> list[list[float]]:
    """The record's predicted boxes in original pixels, clipped; boxes with no area left out."""
    out = []
    for box in record["paper_boxes"]:
        clipped = drawable(box["original"], record["width"], record["height"])
        if clipped is not None:
            out.append(clipped)
    return out


def random_boxes_like(boxes: list[list[float]], width: int, height: int, rng: random.Random) -> list[list[float]]:
    """One random box per box: the same size, a uniform position inside the image."""
    out = []
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        left, top = rng.uniform(0.0, width - w), rng.uniform(0.0, height - h)
        out.append([left, top, left + w, top + h])
    return out


def ineligible_reason(record: dict[str, Any]) -> str | None:
    if record["completion"] is None:
        return "no completion"
    if record["image_missing"]:
        return "image missing"
    if not model_boxes(record):
        return "no drawable predicted box"
    if not strip_coordinates(record["completion"]):
        return "no reasoning text"
    return None


def _png(record: dict[str, Any], boxes: list[list[float]]) -> bytes:
    image, scale = open_for_view(record["image"])
    draw_boxes(image, boxes, scale, MODEL_COLOR, (record["width"], record["height"]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # fast; the judge sees the same pixels
    return buffer.getvalue()


def trials_of(record: dict[str, Any], repeats: int, seed: int) -> list[tuple[int, int, VisionChoiceRequest]]:
    """(repeat, index of the model's image, request) for each repeat of one eligible sample."""
    boxes = model_boxes(record)
    text = consistency_prompt(strip_coordinates(record["completion"]))
    out = []
    for repeat in range(repeats):
        rng = random.Random(f"consistency:{seed}:{repeat}:{record['index']}")
        model_image = 0 if rng.random() < 0.5 else 1
        random_boxes = random_boxes_like(boxes, record["width"], record["height"], rng)
        pair = [_png(record, boxes), _png(record, random_boxes)]
        if model_image == 1:
            pair.reverse()
        out.append((repeat, model_image, VisionChoiceRequest(text=text, images=tuple(pair))))
    return out


def run_consistency(records: list[dict[str, Any]], vision_judge: Any, repeats: int, seed: int) -> None:
    """Add `record["consistency"]` to each record: eligibility and one entry per judged trial."""
    eligible = []
    for record in records:
        reason = ineligible_reason(record)
        record["consistency"] = {"eligible": reason is None, "reason": reason, "trials": []}
        if reason is None:
            eligible.append(record)
    for start in range(0, len(eligible), CHUNK):
        chunk = eligible[start : start + CHUNK]
        trials = [(record, t) for record in chunk for t in trials_of(record, repeats, seed)]
        results = vision_judge.choose([request for _, (_, _, request) in trials])
        for (record, (repeat, model_image, _)), result in zip(trials, results, strict=True):
            record["consistency"]["trials"].append({
                "repeat": repeat,
                "model_image": model_image,
                "choice": result.choice,
                "correct": None if result.failed else result.choice == model_image,
                "failed": result.failed,
                "raw": result.raw,
                "error": result.error,
            })


def aggregate_consistency(records: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """mean and std over repeats of one dataset's records, the per-repeat scores and the counts."""
    eligible = [r for r in records if r.get("consistency", {}).get("eligible")]
    trials = [t for r in eligible for t in r["consistency"]["trials"]]
    scores: list[float | None] = []
    for repeat in range(repeats):
        judged = [t["correct"] for t in trials if t["repeat"] == repeat and not t["failed"]]
        scores.append(sum(judged) / len(judged) if judged else None)
    known = [s for s in scores if s is not None]
    return {
        "mean": statistics.fmean(known) if known else None,
        "std": statistics.stdev(known) if len(known) >= 2 else None,
        "repeats": scores,
        "n": len(eligible),
        "not_eligible": len(records) - len(eligible),
        "failures": sum(1 for t in trials if t["failed"]),
    }
