"""Answer terms: the judge's accuracy score and BLEU-1 against the ground-truth answer.

- `judge_accuracy`: the judge's score of the text between the first ``<answer>`` and the next
  ``</answer>`` (the rest of the text when unclosed). 0 without ``<answer>`` (the judge is not asked);
  0 for rows whose answer is a box (OVD rows, `zero_on_box_answers`; the released code tested
  ``'ovd' in dataset``); a failed judgement scores 0 and is counted by `compute_rewards`
  (``judge_failures``). `binarize: true` maps a score > 0 to 1 (the released trainer did this to the
  summed reward used for advantages; the paper's s_GPT is in {0, 1}). `question: prompt` sends the
  full user text (``ctx.prompts``, suffix included, as released); `question: row` sends
  ``GritRow.question``. `which_answer: last` judges the last ``<answer>`` and `max_answer_chars` scores
  an over-long answer 0 without asking (both as DeepEyes' reward does; defaults keep GRIT's behaviour).
- `bleu1`: BLEU-1 x `scale` of everything after the first ``<answer>`` (closing tag included, so
  it adds the word "answer" - `stop_at_answer_close: false`, as released) against the ground truth,
  both through `bleu.grit_tokens`; 0 without ``<answer>``.

The judge package is duck-typed and imported only when requests are built, so this module stays
importable before (and without) it.

Left out: the judges themselves (`grit_exp.judge`), structure terms (`format_terms.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from grit_exp.data.schema import GritRow
from grit_exp.rewards.bleu import bleu1 as bleu1_score
from grit_exp.rewards.bleu import grit_tokens
from grit_exp.rewards.registry import RewardContext, parse_options, reward_term

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


def answer_text(text: str) -> str | None:
    """Text between the first <answer> and the next </answer> (or the end); None without <answer>."""
    if ANSWER_OPEN not in text:
        return None
    return text.split(ANSWER_OPEN, 1)[1].split(ANSWER_CLOSE, 1)[0]


def last_answer_text(text: str) -> str | None:
    """Text between the LAST <answer> and the next </answer> (or the end); None without <answer>."""
    if ANSWER_OPEN not in text:
        return None
    return text.rsplit(ANSWER_OPEN, 1)[1].split(ANSWER_CLOSE, 1)[0]


# ------------------------------------------------------------------------------------ judge_accuracy


@dataclass(frozen=True)
class JudgeAccuracyOptions:
    binarize: bool = True  # score > 0 -> 1.0, else 0.0
    zero_on_box_answers: bool = True  # rows with GritRow.answer_box (OVD) score 0; the judge is not asked
    question: str = field(default="prompt", metadata={"choices": ("prompt", "row")})
    # which <answer> is judged: the first (GRIT) or the last (DeepEyes' vl_agent.compute_score)
    which_answer: str = field(default="first", metadata={"choices": ("first", "last")})
    # an answer (stripped) at least this long scores 0 and is not judged (DeepEyes: 1000); None: no limit
    max_answer_chars: int | None = None


def judge_requests(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[Any]:
    """One JudgeRequest per completion that the judge must score, None for the others."""
    from grit_exp.judge.base import JudgeRequest

    opt = parse_options("judge_accuracy", JudgeAccuracyOptions, options)
    if opt.question == "prompt" and ctx.prompts is None:
        raise ValueError(
            "reward term judge_accuracy with reward.options.judge_accuracy.question=prompt needs "
            "RewardContext.prompts (the full user text of each completion); set question=row to send "
            "GritRow.question instead"
        )
    out: list[Any] = []
    for i, (text, row) in enumerate(zip(completions, rows, strict=True)):
        prediction = answer_text(text) if opt.which_answer == "first" else last_answer_text(text)
        too_long = opt.max_answer_chars is not None and prediction is not None and len(prediction.strip()) >= opt.max_answer_chars
        if prediction is None or too_long or (opt.zero_on_box_answers and row.answer_box is not None):
            out.append(None)
            continue
        question = ctx.prompts[i] if opt.question == "prompt" else row.question  # type: ignore[index]
        out.append(JudgeRequest(question=question, reference=row.answer, prediction=prediction))
    return out


def ask_judge(judge: Any, requests: list[Any]) -> list[Any]:
    """`judge.score` on the non-None requests, once; results re-aligned (None where not asked)."""
    asked = [r for r in requests if r is not None]
    if not asked:
        return [None] * len(requests)
    if judge is None:
        raise ValueError(
            f"{len(asked)} answers need the judge but RewardContext.judge is None; build one from the "
            "`judge` config group (judge.kind=rules needs no network)"
        )
    results = list(judge.score(asked))
    if len(results) != len(asked):
        raise ValueError(f"judge {judge!r} returned {len(results)} results for {len(asked)} requests")
    it = iter(results)
    return [next(it) if r is not None else None for r in requests]


def judge_result_score(result: Any) -> float | None:
    """The result's score, or None when the judgement failed (scored 0, counted as a failure)."""
    if result is None or result.failed or result.score is None:
        return None
    score = float(result.score)
    if not math.isfinite(score):
        raise ValueError(
            f"judge returned a non-finite score {result.score!r} without marking it failed: {result!r}"
        )
    return score


@reward_term("judge_accuracy", options=JudgeAccuracyOptions, judge_requests=judge_requests)
def judge_accuracy(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("judge_accuracy", JudgeAccuracyOptions, options)
    results = ctx.judge_results.get("judge_accuracy")
    if results is None:
        results = ask_judge(ctx.judge, judge_requests(completions, rows, ctx, **options))
    if len(results) != len(completions):
        raise ValueError(
            f"RewardContext.judge_results['judge_accuracy'] has {len(results)} entries for {len(completions)} completions"
        )
    out = []
    for result in results:
        score = judge_result_score(result)
        if score is None:
            out.append(0.0)
        elif opt.binarize:
            out.append(1.0 if score > 0 else 0.0)
        else:
            out.append(score)
    return out


# ------------------------------------------------------------------------------------ bleu1


@dataclass(frozen=True)
class Bleu1Options:
    scale: float = 0.1  # the released code's weight of BLEU-1
    strip_non_alphanumeric: bool = True  # released: [^a-zA-Z0-9\s] -> space on both sides
    stop_at_answer_close: bool = False  # released: everything after the first <answer>, </answer> included


@reward_term("bleu1", options=Bleu1Options)
def bleu1(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("bleu1", Bleu1Options, options)
    out = []
    for text, row in zip(completions, rows, strict=True):
        if ANSWER_OPEN not in text:
            out.append(0.0)
            continue
        hypothesis = answer_text(text) if opt.stop_at_answer_close else text.split(ANSWER_OPEN, 1)[1]
        score = bleu1_score(
            grit_tokens(row.answer, opt.strip_non_alphanumeric),
            grit_tokens(hypothesis or "", opt.strip_non_alphanumeric),
        )
        out.append(score * opt.scale)
    return out
