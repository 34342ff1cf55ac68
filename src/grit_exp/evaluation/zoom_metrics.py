"""Scoring of completions with zoom turns (issue #20): per-sample turn records and per-dataset zoom metrics
(metrics.json ``<dataset>.zoom``, flat ``eval/<dataset>/zoom/<key>``).

A sample's ``zoom`` record (samples.jsonl; present only when the rollout ran with zoom turns):
``calls`` (one per tool turn: turn, trigger_text, box as written, crop_box in original pixels, error,
ok, crop_iou with the gold boxes, and crop_file for pictured samples), num_calls, num_crops,
crop_iou (union of the crops vs union of the gold boxes; null without gold boxes or without a crop)
and crop_gold_coverage (fraction of the gold union inside the crops).

Per dataset (only records with a ``zoom`` record; the key is absent when zoom was off, so zoom-off
metrics.json is unchanged):

  n                    samples with a completion and a zoom record
  mean_calls           mean tool calls per completion (every call, malformed or past max_turns included)
  mean_turns           mean model turns per completion (1 + crops fed back)
  zoom_rate            fraction of completions that got at least one crop
  malformed_rate       fraction of calls that got a text reply instead of a crop; null without calls
  crop_iou             mean crop_iou over samples with gold boxes and a crop (n_crop_iou of them)
  crop_gold_coverage   mean crop_gold_coverage over the same samples
  acc_zoomed           mean judge score of the samples that got a crop (n_zoomed judged)
  acc_not_zoomed       mean judge score of the others (n_not_zoomed judged)

Left out: the turn pictures and their HTML (`zoom_pictures.py`), rewarding tool use
(grit_exp.rewards.tool_use), cropping (grit_exp.rollout.zoom).
"""

from __future__ import annotations

from typing import Any

from grit_exp.data.schema import GritRow
from grit_exp.grounding.metrics import union_iou
from grit_exp.rewards.tool_use import gold_coverage

ZOOM_KEYS = ("n", "mean_calls", "mean_turns", "zoom_rate", "malformed_rate", "crop_iou", "crop_gold_coverage",
             "n_crop_iou", "acc_zoomed", "n_zoomed", "acc_not_zoomed", "n_not_zoomed")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def zoom_record(calls: list[Any], row: GritRow) -> dict[str, Any]:
    """The ``zoom`` entry of one sample record from its ZoomCall list (module docstring)."""
    entries, crops = [], []
    for call in calls:
        crop = list(map(float, call.crop_box)) if call.ok else None
        if crop is not None:
            crops.append(crop)
        entries.append({
            "turn": call.turn, "trigger_text": call.trigger_text,
            "box": list(call.box) if call.box is not None else None,
            "crop_box": list(call.crop_box) if call.crop_box is not None else None,
            "error": call.error, "ok": call.ok,
            "crop_iou": union_iou([crop], row.bboxs) if crop is not None and row.bboxs else None,
        })
    has_both = bool(crops) and bool(row.bboxs)
    return {
        "calls": entries,
        "num_calls": len(entries),
        "num_crops": len(crops),
        "crop_iou": union_iou(crops, row.bboxs) if has_both else None,
        "crop_gold_coverage": gold_coverage(crops, row.bboxs) if has_both else None,
    }


def zoom_dataset_metrics(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The zoom metrics of one dataset's records; None when none of them has a zoom record."""
    zoomed_records = [r for r in records if r.get("completion") is not None and r.get("zoom") is not None]
    if not zoomed_records:
        return None
    calls = [c for r in zoomed_records for c in r["zoom"]["calls"]]
    crops = [r for r in zoomed_records if r["zoom"]["num_crops"] > 0]
    with_iou = [r for r in zoomed_records if r["zoom"]["crop_iou"] is not None]
    acc_in = [r["metrics"]["acc"] for r in crops if r["metrics"]["acc"] is not None]
    acc_out = [r["metrics"]["acc"] for r in zoomed_records if r["zoom"]["num_crops"] == 0 and r["metrics"]["acc"] is not None]
    return {
        "n": len(zoomed_records),
        "mean_calls": _mean([float(r["zoom"]["num_calls"]) for r in zoomed_records]),
        "mean_turns": _mean([1.0 + r["zoom"]["num_crops"] for r in zoomed_records]),
        "zoom_rate": len(crops) / len(zoomed_records),
        "malformed_rate": _mean([0.0 if c["ok"] else 1.0 for c in calls]),
        "crop_iou": _mean([r["zoom"]["crop_iou"] for r in with_iou]),
        "crop_gold_coverage": _mean([r["zoom"]["crop_gold_coverage"] for r in with_iou]),
        "n_crop_iou": len(with_iou),
        "acc_zoomed": _mean(acc_in),
        "n_zoomed": len(acc_in),
        "acc_not_zoomed": _mean(acc_out),
        "n_not_zoomed": len(acc_out),
    }


def flat_zoom_metrics(dataset: str, zoom: dict[str, Any] | None) -> dict[str, float]:
    """``eval/<dataset>/zoom/<key>`` -> number (nulls left out)."""
    if not zoom:
        return {}
    return {f"eval/{dataset}/zoom/{k}": zoom[k] for k in ZOOM_KEYS if zoom.get(k) is not None}


def zoom_max_turns(rollout_cfg: Any) -> int | None:
    """rollout.zoom.max_turns when zoom turns are on (rollout.zoom.enabled), else None."""
    zoom = getattr(rollout_cfg, "zoom", None)  # the typed RolloutConfig (or a DictConfig node)
    return int(zoom.max_turns) if zoom is not None and zoom.enabled else None
