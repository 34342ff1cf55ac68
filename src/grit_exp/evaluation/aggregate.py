"""Per-dataset metrics (metrics.json) from the sample records, and their flat `eval/<dataset>/<metric>` form.

For each dataset (the rows' `dataset` field, in order of first appearance):

  n                       unique samples (after deduplication)
  duplicates_removed      rows dropped by the deduplication
  missing_images          samples whose image file is missing
  n_scored                samples with a completion (a live model cannot answer without the image)
  acc                     mean raw judge score in [0, 1] over judged samples; null if none
  n_judged                samples in `acc` (box-answer rows are not judged; failures are excluded)
  judge_failures          failed judgements (excluded from `acc`, never counted as 0)
  no_answer_tag           completions without `<answer>` (whatever the prompt; with prompt.judged_answer=tagged
                          and eval.untagged_answer=zero each is in `acc` as 0, as the released scoring did)
  giou / giou_paper       mean grounding IoU over samples with GT boxes: boxes mapped exactly to original
                          pixels / the authors' convention (Qwen as written, InternVL int-truncated)
  n_giou                  samples in the GIoU means
  ovd_map / ovd_map_paper mean OVD set precision over rows with a box answer (exact / authors' convention)
  n_ovd                   samples in the OVD means
  format                  fraction with <think>..</think> <rethink>..</rethink> <answer>
  mean_boxes              mean number of paper-regex boxes per completion
  mean_completion_tokens  mean completion length in tokens; null when unknown (replay without counts)
  reward, rewards         mean weighted reward, and the mean of each term of the reward preset
  reward_sampled          only when sampled evaluation is on (`sampled_reward.py`): the mean reward of
                          reward_sampled_k completions per row sampled at the rollout temperature, over
                          n_sampled rows
  consistency             only when requested (see consistency.py)
  zoom                    only when the rollout ran with zoom turns: turns, crops, crop IoU, accuracy after
                          zooming vs without (`zoom_metrics.py`; flat keys eval/<dataset>/zoom/<key>)

Sums run over samples in their global order, so the numbers are the same bits whatever the number
of processes. A mean over no samples is null, never 0.

Left out: scoring samples (`samples.py`), writing files (`runner.py`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from grit_exp.evaluation.zoom_metrics import flat_zoom_metrics, zoom_dataset_metrics

SCALAR_KEYS = (
    "n", "duplicates_removed", "missing_images", "n_scored", "acc", "n_judged", "judge_failures", "no_answer_tag", "giou",
    "giou_paper", "n_giou", "ovd_map", "ovd_map_paper", "n_ovd", "format", "mean_boxes",
    "mean_completion_tokens", "reward", "reward_sampled", "reward_sampled_k", "n_sampled",
)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _present(records: list[dict[str, Any]], key: str) -> list[float]:
    return [r["metrics"][key] for r in records if r["metrics"][key] is not None]


def dataset_metrics(records: list[dict[str, Any]], duplicates_removed: int = 0) -> dict[str, Any]:
    """The metrics of one dataset's records (see the module docstring)."""
    scored = [r for r in records if r["completion"] is not None]
    giou, ovd = _present(scored, "giou"), _present(scored, "ovd_precision")
    tokens = [r["completion_tokens"] for r in scored if r["completion_tokens"] is not None]
    terms = list(dict.fromkeys(t for r in scored for t in r["rewards"]))
    out = {
        "n": len(records),
        "duplicates_removed": duplicates_removed,
        "missing_images": sum(1 for r in records if r["image_missing"]),
        "n_scored": len(scored),
        "acc": _mean(_present(scored, "acc")),
        "n_judged": len(_present(scored, "acc")),
        "judge_failures": sum(1 for r in scored if r["judge_failure"]),
        "no_answer_tag": sum(1 for r in scored if r["answer_tag"] is False),
        "giou": _mean(giou),
        "giou_paper": _mean(_present(scored, "giou_paper")),
        "n_giou": len(giou),
        "ovd_map": _mean(ovd),
        "ovd_map_paper": _mean(_present(scored, "ovd_precision_paper")),
        "n_ovd": len(ovd),
        "format": _mean(_present(scored, "format")),
        "mean_boxes": _mean([float(v) for v in _present(scored, "num_boxes")]),
        "mean_completion_tokens": _mean([float(t) for t in tokens]),
        "reward": _mean([r["reward"] for r in scored if r["reward"] is not None]),
        "rewards": {t: _mean([r["rewards"][t] for r in scored if t in r["rewards"]]) for t in terms},
    }
    zoom = zoom_dataset_metrics(scored)
    if zoom is not None:  # zoom off: no key, metrics.json unchanged
        out["zoom"] = zoom
    return out


def aggregate(records: list[dict[str, Any]], duplicates: Counter | None = None) -> dict[str, dict[str, Any]]:
    """{dataset: metrics} over all records (in global order), datasets in order of first appearance."""
    duplicates = duplicates or Counter()
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_dataset.setdefault(record["dataset"], []).append(record)
    return {name: dataset_metrics(rows, duplicates.get(name, 0)) for name, rows in by_dataset.items()}


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """`eval/<dataset>/<metric>` -> number for metrics.jsonl / loggers (nulls and `_meta` left out)."""
    flat: dict[str, float] = {}
    for dataset, values in metrics.items():
        if dataset.startswith("_"):
            continue
        for key in SCALAR_KEYS:
            value = values.get(key)
            if value is not None:
                flat[f"eval/{dataset}/{key}"] = value
        for term, value in (values.get("rewards") or {}).items():
            if value is not None:
                flat[f"eval/{dataset}/reward/{term}"] = value
        flat.update(flat_zoom_metrics(dataset, values.get("zoom")))
        consistency = values.get("consistency")
        if isinstance(consistency, dict):
            for key in ("mean", "std"):
                if consistency.get(key) is not None:
                    flat[f"eval/{dataset}/consistency_{key}"] = consistency[key]
    return flat
