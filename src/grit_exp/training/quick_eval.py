"""The in-training evaluation: greedy rollouts on the eval sets, scored with the run's rewards,
the answer judge and grounding IoU. Reports per dataset (the rows' `dataset` field):

  eval/<dataset>/reward   mean weighted reward (the configured preset)
  eval/<dataset>/acc      mean judge score of the <answer> text, raw, in [0, 1]
  eval/<dataset>/giou     grounding IoU, boxes mapped exactly to original pixels (rows with GT boxes)
  eval/<dataset>/format   fraction with <think>...</think>, <rethink>...</rethink> and <answer>

It also returns a few sample records for the completions table. The full evaluation (dedup, paper
conventions, reports) belongs to `grit_exp.evaluate`; this stays small and fast.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from grit_exp.data.prompts import build_user_text
from grit_exp.data.schema import GritRow
from grit_exp.grounding.scoring import grounding_scores
from grit_exp.judge.base import JudgeRequest
from grit_exp.rewards.answer_terms import answer_text
from grit_exp.training.grpo import StepModules, score_rollout

FORMAT = re.compile(r"<think>.*?</think>.*?<rethink>.*?</rethink>.*?<answer>", re.DOTALL)


def quick_eval(m: StepModules, eval_sets: dict[str, list[GritRow]], num_samples_shown: int = 8) -> tuple[dict[str, float], list[dict[str, Any]]]:
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    shown: list[dict[str, Any]] = []
    batch_size = m.cfg.trainer.eval_batch_size
    for rows in eval_sets.values():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            texts = [build_user_text(r.question, m.cfg.prompt, m.adapter.family) for r in batch]
            rollout = m.rollout.generate(m.policy, batch, texts, num_generations=1, greedy=True)
            breakdown = score_rollout(m, rollout)
            answers = [answer_text(t) for t in rollout.texts]
            asked = [i for i, a in enumerate(answers) if a is not None]
            results = m.judge.score([JudgeRequest(texts[i], batch[i].answer, answers[i]) for i in asked])
            acc = [0.0] * len(batch)
            for i, res in zip(asked, results):
                acc[i] = res.score if not res.failed else float("nan")
            for i, row in enumerate(batch):
                ds = row.dataset
                grounding = grounding_scores(rollout.texts[i], row, rollout.prompt.geometries[i])
                values = {"reward": breakdown.total[i], "format": float(bool(FORMAT.search(rollout.texts[i])))}
                if acc[i] == acc[i]:  # judge failures are counted, never averaged in as 0
                    values["acc"] = acc[i]
                else:
                    values["judge_failures"] = 1.0
                if grounding.giou is not None:
                    values["giou"] = grounding.giou
                for key, value in values.items():
                    sums[ds][key] += value
                    counts[ds][key] += 1
                if len(shown) < num_samples_shown:
                    shown.append({
                        "dataset": ds, "question": row.question, "answer": row.answer, "image": row.image,
                        "completion": rollout.texts[i], "reward": breakdown.total[i],
                        "rewards": {k: v[i] for k, v in breakdown.per_term.items()},
                        "geometry": rollout.prompt.geometries[i].to_dict(), "gt_boxes": row.bboxs,
                    })
    metrics = {}
    for ds, values in sums.items():
        for key, total in values.items():
            metrics[f"eval/{ds}/{key}"] = total if key == "judge_failures" else total / counts[ds][key]
    return metrics, shown
