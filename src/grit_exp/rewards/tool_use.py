"""Tool-use terms for zoom turns (issue #20): they read each completion's zoom calls from
``RewardContext.zoom_calls`` (`grit_exp.rollout.zoom.calls.ZoomCall` records, one list per completion)
and score 0 when zoom is off (``zoom_calls`` is None), so a preset holding them runs on any rollout.

- `zoom_format`: a well-formed call. `rule: all_ok`: `value` when the completion made at least one call
  and every call got a crop (`ZoomCall.ok`); `rule: fraction_ok`: `value` x the fraction of its calls
  that got one. 0 without calls.
- `zoom_iou`: how well the crops cover the row's gold boxes (``GritRow.bboxs``, original pixels; the crops'
  ``crop_box`` are original pixels too): `measure: iou` is the IoU of the union of the crops with the union
  of the gold boxes (grounding.metrics.union_iou, the paper's GIoU convention); `measure: gold_coverage`
  is the fraction of the gold union's area that the crops cover (a padded crop around the right object
  scores 1). `crops: union` takes every crop of the completion, `crops: last` only its last one.
  x `value`. 0 for rows without gold boxes and for completions without a crop.
- `tool_bonus`: DeepEyes' conditional tool reward: `value` when the completion got at least one crop
  AND its answer is right (the judge's raw score > `min_accuracy`), else 0. The rule, as written in
  Visual-Agent/DeepEyes, verl/utils/reward_score/vl_agent.py (`compute_score`, commit 6c5e796):
  ``tool_reward = 1.0 if count_vision_1 > 0 and acc_reward > 0.5 else 0.0`` where ``count_vision_1`` counts
  the image turns fed back in the response; the total there is
  ``0.8 * acc_reward + 0.2 * format_reward + 1.2 * tool_reward`` (preset conf/reward/deepeyes.yaml).
  The verdicts are judge_accuracy's (``ctx.judge_results["judge_accuracy"]``): the preset must weight
  `judge_accuracy` (weight 0 computes it without adding it); `check_reward_config` says so otherwise.
- `turn_penalty`: minus `value` per call past ``rollout.zoom.max_turns`` (``ZoomCall.turn >
  ctx.zoom_max_turns``; `per_call: false`: minus `value` once when there is any). 0 when zoom is off.
- `deepeyes_format`: DeepEyes' format reward: -`value` on a format error, else 0. An error, as in
  vl_agent.compute_score: unequal counts of ``<think>`` and ``</think>``; unequal counts of ``<answer>``
  and ``</answer>`` in the text after the last ``</think>``; a last answer of at least
  `max_answer_chars` characters. (Its check that image-turn markers pair up is left out: here the
  rollout, not the model, writes the tool turns, and ``Rollout.texts`` leaves them out.)

Left out: parsing triggers and cropping (grit_exp.rollout.zoom), the evaluation's zoom metrics
(grit_exp.evaluation.zoom_metrics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grit_exp.data.schema import GritRow
from grit_exp.grounding.metrics import union_area, union_iou
from grit_exp.rewards.answer_terms import ANSWER_CLOSE, ANSWER_OPEN, judge_result_score, last_answer_text
from grit_exp.rewards.registry import RewardContext, parse_options, reward_term

ACCURACY_TERM = "judge_accuracy"  # the term whose verdicts tool_bonus reads


def calls_of(ctx: RewardContext, n: int) -> list[list[Any]] | None:
    """ctx.zoom_calls checked against the number of completions; None when zoom is off."""
    if ctx.zoom_calls is None:
        return None
    if len(ctx.zoom_calls) != n:
        raise ValueError(f"RewardContext.zoom_calls has {len(ctx.zoom_calls)} entries for {n} completions")
    return ctx.zoom_calls


def crop_boxes(calls: list[Any], which: str = "union") -> list[list[float]]:
    """The original-pixel crop boxes of the calls that got a crop (all of them, or only the last one)."""
    boxes = [list(map(float, call.crop_box)) for call in calls if call.ok]
    return boxes[-1:] if which == "last" else boxes


def gold_coverage(crops: list[list[float]], gold: list[list[float]]) -> float:
    """Fraction of the gold union's area inside the crops' union (0 when the gold union is empty)."""
    gold_area = union_area(gold)
    if gold_area <= 0.0:
        return 0.0
    crop_area = union_area(crops)
    both = crop_area + gold_area - union_area(crops + gold)  # area of (U crops) n (U gold)
    return min(1.0, max(0.0, both / gold_area))


# ------------------------------------------------------------------------------------ zoom_format


@dataclass(frozen=True)
class ZoomFormatOptions:
    value: float = 0.5
    rule: str = field(default="all_ok", metadata={"choices": ("all_ok", "fraction_ok")})


@reward_term("zoom_format", options=ZoomFormatOptions)
def zoom_format(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("zoom_format", ZoomFormatOptions, options)
    calls = calls_of(ctx, len(completions))
    if calls is None:
        return [0.0] * len(completions)
    out = []
    for made in calls:
        ok = sum(1 for call in made if call.ok)
        if not made:
            out.append(0.0)
        elif opt.rule == "all_ok":
            out.append(opt.value if ok == len(made) else 0.0)
        else:
            out.append(opt.value * ok / len(made))
    return out


# ------------------------------------------------------------------------------------ zoom_iou


@dataclass(frozen=True)
class ZoomIouOptions:
    value: float = 1.0
    measure: str = field(default="iou", metadata={"choices": ("iou", "gold_coverage")})
    crops: str = field(default="union", metadata={"choices": ("union", "last")})


@reward_term("zoom_iou", options=ZoomIouOptions)
def zoom_iou(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("zoom_iou", ZoomIouOptions, options)
    calls = calls_of(ctx, len(completions))
    if calls is None:
        return [0.0] * len(completions)
    out = []
    for made, row in zip(calls, rows, strict=True):
        crops = crop_boxes(made, opt.crops)
        if not crops or not row.bboxs:
            out.append(0.0)
            continue
        score = union_iou(crops, row.bboxs) if opt.measure == "iou" else gold_coverage(crops, row.bboxs)
        out.append(opt.value * score)
    return out


# ------------------------------------------------------------------------------------ tool_bonus


@dataclass(frozen=True)
class ToolBonusOptions:
    value: float = 1.0
    min_accuracy: float = 0.5  # the judge's raw score must exceed it (DeepEyes: acc_reward > 0.5)


@reward_term("tool_bonus", options=ToolBonusOptions)
def tool_bonus(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("tool_bonus", ToolBonusOptions, options)
    calls = calls_of(ctx, len(completions))
    if calls is None:
        return [0.0] * len(completions)
    verdicts = ctx.judge_results.get(ACCURACY_TERM)
    if verdicts is None:
        raise ValueError(
            "reward term tool_bonus reads judge_accuracy's verdicts: add judge_accuracy to reward.weights "
            "(weight 0 computes it without adding it to the total)"
        )
    out = []
    for made, verdict in zip(calls, verdicts, strict=True):
        score = judge_result_score(verdict)
        zoomed = any(call.ok for call in made)
        out.append(opt.value if zoomed and score is not None and score > opt.min_accuracy else 0.0)
    return out


# ------------------------------------------------------------------------------------ turn_penalty


@dataclass(frozen=True)
class TurnPenaltyOptions:
    value: float = 0.5
    per_call: bool = True  # minus value per call past max_turns (false: once)


@reward_term("turn_penalty", options=TurnPenaltyOptions)
def turn_penalty(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("turn_penalty", TurnPenaltyOptions, options)
    calls = calls_of(ctx, len(completions))
    if calls is None or ctx.zoom_max_turns is None:
        return [0.0] * len(completions)
    out = []
    for made in calls:
        past = sum(1 for call in made if call.turn > ctx.zoom_max_turns)
        out.append(-opt.value * (past if opt.per_call else min(past, 1)))
    return out


# ------------------------------------------------------------------------------------ deepeyes_format


@dataclass(frozen=True)
class DeepEyesFormatOptions:
    value: float = 1.0  # DeepEyes: format_reward = -1.0 on an error, weighted 0.2
    max_answer_chars: int = 1000


def deepeyes_format_error(text: str, max_answer_chars: int) -> bool:
    """DeepEyes' format error (module docstring)."""
    if text.count("<think>") != text.count("</think>"):
        return True
    after_think = text.split("</think>")[-1].strip()
    if after_think.count(ANSWER_OPEN) != after_think.count(ANSWER_CLOSE):
        return True
    answer = last_answer_text(text)
    return answer is not None and len(answer.strip()) >= max_answer_chars


@reward_term("deepeyes_format", options=DeepEyesFormatOptions)
def deepeyes_format(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("deepeyes_format", DeepEyesFormatOptions, options)
    return [-opt.value if deepeyes_format_error(text, opt.max_answer_chars) else 0.0 for text in completions]
