"""Run an evaluation: rows -> greedy completions (or a replay) -> scores -> merged records -> files.

Public entry points:

- `run_evaluation(cfg, run_dir)`: what `python -m grit_exp.evaluate` runs on a composed conf/eval.yaml.
- `evaluate_model(cfg, adapter, model, judge, eval_sets, out_dir, step=...)`: for the training loop
  (`<run>/eval/step_<N>/`); `cfg` may be a training config (no `eval` / `metrics` nodes needed).
- `evaluate_replay(cfg, items, judge, out_dir)`: recorded completions, no model.

How the numbers stay independent of the number of processes: the rows are deduplicated first
(the paper scorer's key), then cut into batches of `eval.batch_size` in that global order; batch b
goes to process b mod world_size, so every batch (and its padding) is the same whatever the number
of processes, and greedy decoding gives the same text (dealt here, not by accelerate's
`split_between_processes`, whose contiguous blocks would change which process judges which sample
and so the per-process judge counts). Each process scores its samples; the records,
keyed by global index, are gathered on rank 0, checked to be exactly 0..n-1 once each (no duplicate,
no padding), and written in index order. Rank 0 writes samples.jsonl, pictures under images/,
report.html and, last, metrics.json; the metrics are broadcast so every process returns them.

Left out: per-sample scoring (`samples.py`), averaging (`aggregate.py`), drawing and the page.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from grit_exp.cluster import collectives
from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import SkipReport
from grit_exp.data.schema import GritRow
from grit_exp.evaluation.aggregate import aggregate, flat_metrics
from grit_exp.evaluation.consistency import UNAVAILABLE_RULES, aggregate_consistency, run_consistency
from grit_exp.evaluation.html_report import write_report
from grit_exp.evaluation.items import EvalItem, dedup_items
from grit_exp.evaluation.pictures import choose_pictured, picture_name, sample_picture
from grit_exp.evaluation.samples import Completed, MemoJudge, score_samples
from grit_exp.evaluation.settings import EvalOptions
from grit_exp.evaluation.zoom_metrics import zoom_max_turns
from grit_exp.evaluation.zoom_pictures import write_turn_pictures

log = logging.getLogger("grit_exp.evaluate")

Completer = Callable[[list[tuple[int, EvalItem]]], list[Completed]]


@dataclass
class EvalResult:
    metrics: dict[str, Any]  # the content of metrics.json (every process)
    records: list[dict[str, Any]]  # all sample records on rank 0, [] elsewhere
    out_dir: Path

    @property
    def flat(self) -> dict[str, float]:
        """`eval/<dataset>/<metric>` values for metrics.jsonl and loggers."""
        return flat_metrics(self.metrics)


def shard_batches(n: int, batch_size: int, rank: int, world_size: int) -> list[range]:
    """The batches (global index ranges) of process `rank`: batch b goes to process b mod world_size."""
    if batch_size < 1:
        raise ValueError(f"eval batch size must be >= 1, got {batch_size}")
    count = math.ceil(n / batch_size)
    return [range(b * batch_size, min(n, (b + 1) * batch_size)) for b in range(count) if b % world_size == rank]


def merge_records(gathered: list[list[dict[str, Any]]], n: int) -> list[dict[str, Any]]:
    """The processes' records in global index order; every index 0..n-1 exactly once, or an error."""
    merged = sorted((r for part in gathered for r in part), key=lambda r: r["index"])
    indices = [r["index"] for r in merged]
    if indices != list(range(n)):
        counts = Counter(indices)
        raise RuntimeError(
            f"evaluation shards do not add up to the {n} unique samples: duplicated indices "
            f"{sorted(i for i, c in counts.items() if c > 1)[:10]}, missing {sorted(set(range(n)) - set(counts))[:10]}"
        )
    return merged


def items_from_rows(eval_sets: Mapping[str, list[GritRow]] | list[GritRow]) -> list[EvalItem]:
    """EvalItems from rows that were already read (e.g. the training run's eval sets)."""
    named = eval_sets.items() if isinstance(eval_sets, Mapping) else [("eval", list(eval_sets))]
    return [EvalItem(row=row, image_missing=not Path(row.image).is_file(), set_name=name) for name, rows in named for row in rows]


def base_meta(cfg: Any, judge: Any, decoding: str) -> dict[str, Any]:
    from grit_exp.config.judge import judge_settings

    settings = judge_settings(cfg.judge)
    return {
        "judge": judge.name,
        # paper / code / custom (grit_exp.config.judge.JUDGE_PRESETS), and the settings that decide it
        "judge_preset": settings["preset"],
        "judge_settings": settings,
        "model": cfg.model.name,
        "model_family": cfg.model.family,
        "prompt": cfg.prompt.name,
        "reward": cfg.reward.name,
        "decoding": decoding,
        "num_processes": collectives.world_size(),
        "seed": int(cfg.seed),
        "deduplication": "first row of each (dataset, question, image, answer)",
    }


def judge_verdict_counts(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """This evaluation's judge work: distinct answers judged, how many verdicts came from the verdict
    cache (judge/cache.py), HTTP requests sent (retries included) and failures."""
    delta = {key: after[key] - before[key] for key in after}
    return {"judged": delta["answers"] - delta["deduplicated"], "from_cache": delta["cache_hits"],
            "requests": delta["requests"], "failures": delta["failures"]}


def progress_bar(total: int, step: int | None = None) -> tqdm:
    """Rank 0's bar over its samples, on stderr; off on other ranks and when stderr is not a terminal
    (logs and CI get the summary lines instead)."""
    desc = "eval" if step is None else f"eval step {step}"
    return tqdm(total=total, desc=desc, unit="sample", file=sys.stderr, mininterval=1.0, dynamic_ncols=True,
                disable=True if not collectives.is_main() else None)


def evaluate_items(
    items: list[EvalItem],
    out_dir: Path,
    *,
    complete: Completer,
    reward_cfg: Any,
    judge: Any,
    options: EvalOptions,
    meta: dict[str, Any],
    vision_judge: Any = None,
    per_dataset_extra: Callable[[list[EvalItem]], dict[str, dict[str, float]]] | None = None,
    zoom_max_turns: int | None = None,
) -> EvalResult:
    """Deduplicate, shard, complete, score, gather and (rank 0) write; see the module docstring.
    `per_dataset_extra(unique items)` (every process calls it) adds metrics per dataset, e.g. the
    sampled reward (`sampled_reward.py`). `zoom_max_turns`: rollout.zoom.max_turns when zoom turns are on."""
    unique, duplicates = dedup_items(items)
    extra = per_dataset_extra(unique) if per_dataset_extra is not None else {}
    rank, world = collectives.rank(), collectives.world_size()
    completed: list[Completed] = []
    batches = shard_batches(len(unique), options.batch_size, rank, world)
    with progress_bar(sum(len(b) for b in batches), meta.get("step")) as bar:
        for batch in batches:
            completed.extend(complete([(i, unique[i]) for i in batch]))
            bar.update(len(batch))
    judge_before = judge.stats.as_dict()
    memo = MemoJudge(judge)
    records = score_samples(completed, reward_cfg, memo, judged_answer=options.judged_answer,
                            untagged_answer=options.untagged_answer, zoom_max_turns=zoom_max_turns)

    if options.consistency and vision_judge is not None:
        run_consistency(records, vision_judge, options.consistency_repeats, options.seed)
    merged = merge_records(collectives.all_gather_object(records), len(unique))
    judge_counts = judge_verdict_counts(judge_before, judge.stats.as_dict())
    judge_counts = {k: sum(c[k] for c in collectives.all_gather_object(judge_counts)) for k in judge_counts}

    metrics: dict[str, Any] | None = None
    if collectives.is_main():
        metrics = aggregate(merged, duplicates)
        for name, values in extra.items():
            metrics.setdefault(name, {}).update(values)
        if options.consistency:
            for name in metrics:
                if vision_judge is None:
                    metrics[name]["consistency"] = UNAVAILABLE_RULES
                else:
                    part = [r for r in merged if r["dataset"] == name]
                    metrics[name]["consistency"] = aggregate_consistency(part, options.consistency_repeats)
        metrics["_meta"] = {
            **meta,
            "consistency": (UNAVAILABLE_RULES if vision_judge is None else vision_judge.name) if options.consistency else "off",
            # what the judge scored: the prompt's judged_answer, and eval.untagged_answer for answers without <answer>
            "judged_answer": options.judged_answer,
            "untagged_answer": options.untagged_answer,
            "judge_verdicts": judge_counts,
        }
        write_outputs(out_dir, metrics, merged, options)
        log_summary(metrics)
    metrics = collectives.broadcast_object(metrics)
    return EvalResult(metrics=metrics, records=merged if collectives.is_main() else [], out_dir=out_dir)


def write_outputs(out_dir: Path, metrics: dict[str, Any], records: list[dict[str, Any]], options: EvalOptions) -> None:
    """Pictures, samples.jsonl, report.html, then metrics.json (its presence means the rest is there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pictured, turns = [], {}
    for i in choose_pictured(records, options.num_pictures, options.seed):
        path = sample_picture(records[i], out_dir / picture_name(records[i]))
        pictured.append((records[i], path))
        if records[i].get("zoom"):  # zoom turns: each crop beside its box on the original; sets calls' crop_file
            turns[records[i]["index"]] = write_turn_pictures(records[i], out_dir / "images")
    with (out_dir / "samples.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    write_report(out_dir, metrics, pictured, records, turn_pictures=turns)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def log_summary(metrics: dict[str, Any]) -> None:
    for name, values in metrics.items():
        if name.startswith("_"):
            continue
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in values.items() if k in ("n", "acc", "giou", "giou_paper", "ovd_map", "format", "judge_failures", "missing_images")}
        log.info("eval %s: %s", name, shown)


# --------------------------------------------------------------------------------------------- completers


def replay_completer(prompt_cfg: Any) -> Completer:
    def complete(batch: list[tuple[int, EvalItem]]) -> list[Completed]:
        out = []
        for index, item in batch:
            family = item.family or "qwen2_5_vl"
            out.append(Completed(
                index=index, item=item, user_text=build_user_text(item.row.question, prompt_cfg, family),
                completion=item.completion, geometry=item.geometry, completion_tokens=item.completion_tokens,
            ))
        return out

    return complete


def model_completer(adapter: Any, model: Any, rollout_cfg: Any, prompt_cfg: Any) -> Completer:
    """Greedy completions of one batch; items whose image is missing get none (recorded, counted)."""
    from grit_exp.rollout.hf import HFRollout

    rollout = HFRollout(adapter, rollout_cfg)

    def complete(batch: list[tuple[int, EvalItem]]) -> list[Completed]:
        texts = {i: build_user_text(item.row.question, prompt_cfg, adapter.family) for i, item in batch}
        present = [(i, item) for i, item in batch if not item.image_missing]
        by_index: dict[int, Completed] = {}
        if present:
            result = rollout.generate(model, [it.row for _, it in present], [texts[i] for i, _ in present],
                                      num_generations=1, greedy=True)
            lengths = result.num_completion_tokens
            zoom_calls = result.zoom_calls  # None when zoom is off
            for k, (i, item) in enumerate(present):
                ids = result.completion_ids[k][result.completion_mask[k].bool()].tolist()
                by_index[i] = Completed(i, item, texts[i], result.texts[k], result.prompt.geometries[k], int(lengths[k]), ids,
                                        zoom_calls=zoom_calls[k] if zoom_calls is not None else None)
        for i, item in batch:
            if i not in by_index:
                by_index[i] = Completed(i, item, texts[i], None, None, None, None,
                                        errors=[f"image missing: {item.row.image} ({item.row.source})"])
        return [by_index[i] for i, _ in batch]

    return complete


# --------------------------------------------------------------------------------------------- entry points


def _vision_judge(cfg: Any, options: EvalOptions) -> Any:
    if not options.consistency:
        return None
    from grit_exp.judge.vision import build_vision_judge

    return build_vision_judge(cfg.judge)


def evaluate_model(
    cfg: Any,
    adapter: Any,
    model: Any,
    judge: Any,
    eval_sets: Mapping[str, list[GritRow]] | list[GritRow],
    out_dir: Path,
    *,
    step: int | None = None,
    options: EvalOptions | None = None,
    items: list[EvalItem] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> EvalResult:
    """Greedy evaluation of a loaded model on `eval_sets`; writes into `out_dir` (rank 0). All
    processes must call it with the same rows. Training calls it at `<run>/eval/step_<N>/`. With
    `sampled_k` > 0 (eval.sampled_k, in training and evaluation configs) it also measures the mean reward of K
    sampled completions per row at the rollout's temperature (`reward_sampled`)."""
    options = options or EvalOptions.from_config(cfg)
    meta = base_meta(cfg, judge, "greedy")
    from grit_exp.rollout.hf import HFRollout

    meta.update(rollout="hf", max_new_tokens=int(cfg.rollout.max_new_tokens), step=step,
                generation=HFRollout(adapter, cfg.rollout).settings(greedy=True), **(extra_meta or {}))
    sampled = None
    if options.sampled_k > 0:
        from grit_exp.evaluation.sampled_reward import sampled_reward

        meta["sampled"] = {"k": options.sampled_k, **HFRollout(adapter, cfg.rollout).settings(greedy=False)}

        def sampled(unique: list[EvalItem]) -> dict[str, dict[str, float]]:
            return sampled_reward(cfg, adapter, model, judge, unique, k=options.sampled_k,
                                  batch_size=options.batch_size * options.sampled_k)

    return evaluate_items(
        items if items is not None else items_from_rows(eval_sets),
        Path(out_dir),
        complete=model_completer(adapter, model, cfg.rollout, cfg.prompt),
        reward_cfg=cfg.reward,
        judge=judge,
        options=options,
        meta=meta,
        vision_judge=_vision_judge(cfg, options),
        per_dataset_extra=sampled,
        zoom_max_turns=zoom_max_turns(cfg.rollout),
    )


def evaluate_replay(
    cfg: Any, items: list[EvalItem], judge: Any, out_dir: Path, *, skipped: SkipReport | None = None,
    options: EvalOptions | None = None,
) -> EvalResult:
    """Score recorded completions (`grit_exp.rollout.replay.read_replay` items); no model is loaded."""
    options = options or EvalOptions.from_config(cfg)
    meta = base_meta(cfg, judge, "replay")
    meta.update(rollout="replay", replay={
        "path": str(cfg.rollout.path),
        "skipped": skipped.total if skipped is not None else 0,
        "skipped_by_reason": dict(sorted(skipped.counts.items())) if skipped is not None else {},
        "boxes_outside_frame": sum(item.boxes_outside_frame for item in items),
    })
    return evaluate_items(
        items, Path(out_dir), complete=replay_completer(cfg.prompt), reward_cfg=cfg.reward, judge=judge,
        options=options, meta=meta, vision_judge=_vision_judge(cfg, options),
    )


def run_evaluation(cfg: Any, run_dir: Path) -> EvalResult:
    """The whole `python -m grit_exp.evaluate` job on a composed, validated conf/eval.yaml."""
    from grit_exp.judge import build_judge
    from grit_exp.run_info import write_run_info

    run_dir = Path(run_dir)
    started_group = collectives.init(cfg.cluster.backend)
    options = EvalOptions.from_config(cfg)
    judge = build_judge(cfg.judge)
    try:
        if cfg.rollout.kind == "replay":
            from grit_exp.rollout.replay import read_replay_for_config

            items, skipped = read_replay_for_config(cfg)
            if collectives.is_main():
                write_run_info(run_dir, cfg, [item.row for item in items])
            result = evaluate_replay(cfg, items, judge, run_dir, skipped=skipped, options=options)
        else:
            result = _run_model_evaluation(cfg, run_dir, judge, options)
        if collectives.is_main():
            with (run_dir / "metrics.jsonl").open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": 0, **result.flat}) + "\n")
        return result
    finally:
        close = getattr(judge, "close", None)
        if close is not None:
            close()
        if started_group:
            collectives.shutdown()


def _run_model_evaluation(cfg: Any, run_dir: Path, judge: Any, options: EvalOptions) -> EvalResult:
    import os

    import torch

    from grit_exp.evaluation.items import load_eval_items
    from grit_exp.models import build_adapter
    from grit_exp.run_info import write_run_info

    torch.manual_seed(int(cfg.seed))
    if collectives.is_main():
        load_eval_items(cfg.dataset, cfg.seed)  # rank 0 generates / checks the data first
    collectives.barrier()
    items, skipped = load_eval_items(cfg.dataset, cfg.seed)
    if collectives.is_main():
        write_run_info(run_dir, cfg, [item.row for item in items])
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if torch.cuda.is_available() else torch.device("cpu")
    adapter = build_adapter(cfg.model, seed=int(cfg.seed), cache_dir=cfg.paths.cache_dir) if collectives.is_main() else None
    collectives.barrier()  # rank 0 builds a tiny model once; the others then find it
    adapter = adapter or build_adapter(cfg.model, seed=int(cfg.seed), cache_dir=cfg.paths.cache_dir)
    checkpoint = cfg.eval.checkpoint
    model = adapter.load_model(device, path=str(checkpoint) if checkpoint else None)
    model.eval()
    extra = {"checkpoint": str(checkpoint or adapter.path), "skipped_rows": skipped.total,
             "skipped_by_reason": dict(sorted(skipped.counts.items()))}
    return evaluate_model(cfg, adapter, model, judge, [], run_dir, options=options, items=items, extra_meta=extra)
