"""Per-sample scoring: one JSON-ready record per evaluated sample (a line of samples.jsonl).

`score_samples(completed, reward_cfg, judge)` takes this process's `Completed` samples and returns
their records, holding:

- the row's fields, the prompt's user text, the completion and its token count;
- `boxes`: the structured boxes (`parse_boxes`: section, label, kind) with `original` pixels, and
  `paper_boxes`: the paper regex's boxes (what GIoU and the counts use), each with its section and
  `original` (exact mapping) and `original_paper` (the authors' convention) pixels;
- `metrics`: giou, giou_paper, ovd_precision, ovd_precision_paper, format, num_boxes, acc;
- `rewards` ({term: value} of the configured preset) and `reward` (their weighted total);
- the judge's raw output, `judge_failure`, and `errors`;
- with zoom turns only, `zoom`: each turn's call, crop and crop IoU (`zoom_metrics.zoom_record`).

ACC, as the authors scored it: the prompt says what is judged (`prompt.judged_answer`). `tagged`
(every prompt but the direct query): the text between `<answer>` and `</answer>`; a completion
without `<answer>` follows `untagged_answer`: `zero` (ACC 0, the judge is not asked: the released
scoring, `judged_text: "none (no <answer>)"`) or `judge_whole_completion` (the judge scores the whole
completion). `whole_response` (the direct query, which asks for no tags): the whole completion.
`answer_tag` records whether the completion has an `<answer>` (aggregate.py counts those without).
The judge's `{question}` is the full user text, as released. Rows whose answer is a box (OVD) are not judged
(`acc` null): their metric is the OVD precision. A failed judgement is `judge_failure: true`,
`acc` null: never a 0. The judge is asked once per distinct request: the reward's judge term reads
the same verdicts (`MemoJudge`).

A sample without a completion (its image is missing, so the model could not see it) gets null
metrics and an entry in `errors`; it is counted, never scored as 0.

`failure_kinds(record)` names what went wrong with a scored record, for the report and the pictures:
"missing image", "judge failure", "no boxes" (a completion without any paper-regex box) and
"wrong answer" (judge score < 0.5; for box answers, OVD precision < 0.5).

Left out: averaging (`aggregate.py`), pictures, the consistency metric.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from grit_exp.evaluation.items import EvalItem
from grit_exp.evaluation.zoom_metrics import zoom_record
from grit_exp.grounding.boxes import parse_boxes, parse_paper_boxes
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.grounding.scoring import grounding_scores
from grit_exp.judge.base import JudgeRequest, JudgeResult, JudgeStats
from grit_exp.rewards import RewardContext, compute_rewards
from grit_exp.rewards.answer_terms import answer_text

# <think>...</think> then <rethink>...</rethink> then <answer> (the GRIT output structure)
FORMAT_PATTERN = re.compile(r"<think>.*?</think>.*?<rethink>.*?</rethink>.*?<answer>", re.DOTALL)


@dataclass
class Completed:
    """One sample ready to score: its global index, row, and the completion (None: none was made)."""

    index: int
    item: EvalItem
    user_text: str
    completion: str | None
    geometry: ImageGeometry | None
    completion_tokens: int | None
    token_ids: list[int] | None = None
    errors: list[str] = field(default_factory=list)
    # zoom turns (rollout.zoom.enabled): the completion's ZoomCall records ([] without calls); None: zoom off
    zoom_calls: list[Any] | None = None


class MemoJudge:
    """Wraps a judge so that each distinct request is judged once (evaluation ACC and the reward's
    judge term then agree, and a paid judge is not asked twice)."""

    def __init__(self, judge: Any) -> None:
        self.judge = judge
        self.name = judge.name
        self.stats: JudgeStats = judge.stats
        self.memo: dict[JudgeRequest, JudgeResult] = {}

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        missing = list(dict.fromkeys(r for r in requests if r not in self.memo))
        if missing:
            results = list(self.judge.score(missing))
            if len(results) != len(missing):
                raise ValueError(f"judge {self.name} returned {len(results)} results for {len(missing)} requests")
            self.memo.update(zip(missing, results, strict=True))
        return [self.memo[r] for r in requests]


FAILURE_KINDS = ("missing image", "judge failure", "no boxes", "wrong answer")
WRONG_BELOW = 0.5  # a judge score (or OVD precision) below this is a wrong answer


def failure_kinds(record: dict[str, Any]) -> list[str]:
    """What went wrong with one sample record, in FAILURE_KINDS order; [] for a sample that is fine."""
    metrics = record.get("metrics") or {}
    kinds = []
    if record.get("image_missing"):
        kinds.append("missing image")
    if record.get("judge_failure"):
        kinds.append("judge failure")
    if record.get("completion") is not None and metrics.get("num_boxes") == 0:
        kinds.append("no boxes")
    acc, ovd = metrics.get("acc"), metrics.get("ovd_precision")
    if (acc is not None and acc < WRONG_BELOW) or (record.get("answer_box") is not None and ovd is not None and ovd < WRONG_BELOW):
        kinds.append("wrong answer")
    return kinds


def _finite(box: list[float]) -> bool:
    return all(math.isfinite(v) for v in box)


def _box_records(completion: str, geometry: ImageGeometry) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    structured = [
        {
            "box": list(b.box),
            "section": b.section,
            "label": b.label,
            "kind": b.kind,
            "original": geometry.model_to_original(b.box),
        }
        for b in parse_boxes(completion)
    ]
    paper = [
        {
            "box": list(b.box),
            "section": b.section,
            "original": geometry.model_to_original(b.box),
            "original_paper": geometry.model_to_original_paper(b.box),
        }
        for b in parse_paper_boxes(completion)
    ]
    for records in (structured, paper):
        for record in records:  # a 400-digit "coordinate" is inf: JSON has no inf, and metrics drop it
            for key in ("box", "original", "original_paper"):
                if key in record and not _finite(record[key]):
                    record[key] = None
    return structured, paper


NOT_JUDGED_UNTAGGED = "none (no <answer>)"  # judged_text of an untagged answer scored 0 (untagged_answer=zero)
JUDGED_ANSWERS = ("tagged", "whole_response")  # prompt.judged_answer
UNTAGGED_ANSWERS = ("zero", "judge_whole_completion")  # eval.untagged_answer


def _judge_request(c: Completed, judged_answer: str, untagged_answer: str) -> tuple[JudgeRequest | None, str | None]:
    """(request, what was judged) for ACC; (None, None) for box answers or no completion;
    (None, NOT_JUDGED_UNTAGGED) for an untagged answer that scores 0 without asking the judge."""
    if c.completion is None or c.item.row.answer_box is not None:
        return None, None
    answer = answer_text(c.completion) if judged_answer == "tagged" else None
    if answer is not None:
        judged, prediction = "answer", answer
    elif judged_answer == "whole_response" or untagged_answer == "judge_whole_completion":
        judged, prediction = "whole_completion", c.completion.strip()
    else:
        return None, NOT_JUDGED_UNTAGGED
    return JudgeRequest(question=c.user_text, reference=c.item.row.answer, prediction=prediction), judged


def base_record(c: Completed) -> dict[str, Any]:
    row = c.item.row
    return {
        "index": c.index,
        "dataset": row.dataset,
        "eval_set": c.item.set_name,
        "question": row.question,
        "answer": row.answer,
        "image": row.image,
        "width": row.width,
        "height": row.height,
        "bboxs": row.bboxs,
        "answer_box": row.answer_box,
        "split": row.split,
        "source": row.source,
        "key_words": row.key_words,
        "gold": row.gold.to_dict() if row.gold is not None else None,
        "extra": row.extra,  # any other fields of the row's JSON object
        "image_missing": c.item.image_missing,
        "model_family": c.geometry.family if c.geometry is not None else c.item.family,
        "geometry": c.geometry.to_dict() if c.geometry is not None else None,
        "user_text": c.user_text,
        "completion": c.completion,
        "completion_tokens": c.completion_tokens,
        "boxes": [],
        "paper_boxes": [],
        "metrics": {
            "acc": None,
            "giou": None,
            "giou_paper": None,
            "ovd_precision": None,
            "ovd_precision_paper": None,
            "format": None,
            "num_boxes": None,
        },
        "answer_tag": None,  # whether the completion has an <answer> (None: no completion)
        "judged_text": None,
        "judge_raw": None,
        "judge_failure": False,
        "judge_error": None,
        "rewards": {},
        "reward": None,
        "errors": list(c.errors),
    }


def score_samples(
    completed: list[Completed], reward_cfg: Any, judge: Any, *, judged_answer: str = "tagged",
    untagged_answer: str = "zero", zoom_max_turns: int | None = None,
) -> list[dict[str, Any]]:
    """Records of `completed` (in the same order): grounding, ACC, rewards. One judge round-trip.
    `judged_answer` (the prompt's) and `untagged_answer` (eval's) decide what the judge scores (module docstring).
    With zoom turns (`Completed.zoom_calls`) each record gets a ``zoom`` entry (`zoom_metrics.zoom_record`) and
    the reward's tool-use terms see the calls and `zoom_max_turns`."""
    if judged_answer not in JUDGED_ANSWERS or untagged_answer not in UNTAGGED_ANSWERS:
        raise ValueError(f"judged_answer={judged_answer!r} / untagged_answer={untagged_answer!r}: valid are "
                         f"{JUDGED_ANSWERS} / {UNTAGGED_ANSWERS}")
    memo = judge if isinstance(judge, MemoJudge) else MemoJudge(judge)
    records = [base_record(c) for c in completed]
    scored = [i for i, c in enumerate(completed) if c.completion is not None]

    asks = {i: _judge_request(completed[i], judged_answer, untagged_answer) for i in scored}
    requests = [req for req, _ in asks.values() if req is not None]
    memo.score(requests)  # all of this process's ACC requests in one call

    for i in scored:
        c, record = completed[i], records[i]
        assert c.completion is not None and c.geometry is not None
        record["boxes"], record["paper_boxes"] = _box_records(c.completion, c.geometry)
        grounding = grounding_scores(c.completion, c.item.row, c.geometry)
        metrics = record["metrics"]
        metrics.update(
            giou=grounding.giou,
            giou_paper=grounding.giou_paper,
            ovd_precision=grounding.ovd_precision,
            ovd_precision_paper=grounding.ovd_precision_paper,
            format=1.0 if FORMAT_PATTERN.search(c.completion) else 0.0,
            num_boxes=grounding.num_pred_boxes,
        )
        record["answer_tag"] = answer_text(c.completion) is not None
        if c.zoom_calls is not None:
            record["zoom"] = zoom_record(c.zoom_calls, c.item.row)
        request, judged = asks[i]
        if judged == NOT_JUDGED_UNTAGGED:
            record["judged_text"] = judged
            metrics["acc"] = 0.0
        elif request is not None:
            result = memo.memo[request]
            record["judged_text"] = judged
            record["judge_raw"] = result.raw
            if result.failed or result.score is None:
                record["judge_failure"] = True
                record["judge_error"] = result.error
                record["errors"].append(f"judge failed: {result.error}")
            else:
                metrics["acc"] = float(result.score)

    if scored:
        texts = [completed[i].completion for i in scored]
        rows = [completed[i].item.row for i in scored]
        token_ids = [completed[i].token_ids for i in scored]
        zoom_calls = [completed[i].zoom_calls for i in scored]
        ctx = RewardContext(
            prompts=[completed[i].user_text for i in scored],
            token_ids=token_ids if all(t is not None for t in token_ids) else None,  # type: ignore[arg-type]
            judge=memo,
            counting_datasets=list(reward_cfg.counting_datasets),
            zoom_calls=zoom_calls if all(z is not None for z in zoom_calls) else None,  # type: ignore[arg-type]
            zoom_max_turns=zoom_max_turns,
        )
        breakdown = compute_rewards(reward_cfg, texts, rows, ctx)  # type: ignore[arg-type]
        for k, i in enumerate(scored):
            records[i]["rewards"] = {term: values[k] for term, values in breakdown.per_term.items()}
            records[i]["reward"] = breakdown.total[k]
    return records
