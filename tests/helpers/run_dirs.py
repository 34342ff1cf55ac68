"""Builders of small run directories on disk, shaped like the ones train / evaluate write (DESIGN.md).

Used by the report tests and the notebook test; everything is written here by hand, so the tests do
not depend on the evaluation code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, ImageDraw


def write_config(run: Path, model: str = "qwen2_5_vl_3b", prompt: str = "grit", family: str = "qwen2_5_vl",
                 model_path: str = "Qwen/Qwen2.5-VL-3B-Instruct", judge_kind: str = "openai",
                 table1: dict[str, Any] | None = None, experiment: str | None = None, note: str = "",
                 training: dict[str, Any] | None = None) -> None:
    """`training`: the `algorithm` / `trainer` nodes of a training run's config (absent for evaluate runs)."""
    hydra_dir = run / ".hydra"
    hydra_dir.mkdir(parents=True, exist_ok=True)
    cfg = {
        "seed": 0,
        "paths": {"data_root": "data/GRIT_data", "cache_dir": "${oc.env:HOME}/.cache/grit_exp"},
        "model": {"name": model, "family": family, "path": model_path},
        "prompt": {"name": prompt, "question_prefix": "\nQuestion: ", "suffix": "", "example": ""},
        "judge": {"kind": judge_kind, "model": "gpt-4o"},
        "experiment_note": note,
        "table1": table1 or {"model": None, "method": None},
        **(training or {}),
    }
    (hydra_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    choices = {"model": model, "prompt": prompt, "judge": judge_kind, "experiment": experiment}
    (hydra_dir / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    overrides = [f"experiment={experiment}"] if experiment else []
    (hydra_dir / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / "run_info.json").write_text(json.dumps({"git": {"commit": "0" * 40, "dirty": False},
                                                   "data_fingerprint": "abc", "packages": {}}))


def write_metrics(folder: Path, datasets: dict[str, dict[str, Any]], judge: str = "openai:gpt-4o",
                  model: str = "qwen2_5_vl_3b", prompt: str = "grit") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = dict(datasets)
    data["_meta"] = {"judge": judge, "model": model, "prompt": prompt, "decoding": "greedy", "num_processes": 1}
    (folder / "metrics.json").write_text(json.dumps(data, indent=1))


def write_curves(run: Path, steps: int = 6, eval_every: int = 3, datasets: tuple[str, ...] = ("vsr", "tallyqa")) -> None:
    lines = []
    for step in range(0, steps + 1):
        record: dict[str, Any] = {"step": step}
        if step:
            record.update({"train/reward": 0.5 + 0.1 * step, "train/reward/format": 0.2 + 0.01 * step,
                           "train/reward/judge_accuracy": 0.3, "train/kl": 0.001 * step})
        if step % eval_every == 0:
            for i, ds in enumerate(datasets):
                record[f"eval/{ds}/acc"] = 0.1 * step / steps + 0.05 * i
                record[f"eval/{ds}/giou"] = 0.02 * step
                record[f"eval/{ds}/reward"] = 0.4 + 0.05 * step
        lines.append(json.dumps(record))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def write_samples(folder: Path, count: int = 3) -> None:
    """samples.jsonl (records with an `index`) plus a picture images/sample_<index>.png for each."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    with (folder / "samples.jsonl").open("w") as f:
        for i in range(count):
            im = Image.new("RGB", (64, 48), (200, 220, 240))
            ImageDraw.Draw(im).rectangle([8 + i, 8, 40, 30], outline=(255, 0, 0), width=2)
            im.save(images / f"sample_{i:06d}.png")
            f.write(json.dumps({"index": i, "dataset": "vsr", "question": f"question {i}?", "answer": "yes",
                                "completion": "<think> box [8, 8, 40, 30] </think><rethink>ok</rethink><answer>yes</answer>",
                                "metrics": {"acc": 1.0, "giou": 0.5, "giou_paper": 0.5, "format": 1.0}}) + "\n")


GRIT_QWEN_DATASETS: dict[str, dict[str, Any]] = {
    "vsr": {"n": 10, "acc": 0.75, "giou": 0.31, "giou_paper": 0.300, "ovd_map": None, "judge_failures": 0},
    "tallyqa": {"n": 8, "acc": 0.5, "giou": 0.41, "giou_paper": 0.4, "judge_failures": 2},
    "mathvista": {"n": 5, "acc": 0.6, "giou": None, "giou_paper": None},
    "mme_count": {"n": 4, "acc": 0.9},
    "mme_position": {"n": 4, "acc": 0.8},
    "mme_existence": {"n": 4, "acc": 1.0},
    "mme_color": {"n": 4, "acc": 0.7},
    "ovd_position": {"n": 6, "acc": 0.0, "giou": 0.45, "giou_paper": 0.41, "ovd_map": 0.2},
}


def make_evaluate_run(run: Path, datasets: dict[str, dict[str, Any]] | None = None, **config: Any) -> Path:
    """An evaluate run: config + metrics.json, samples.jsonl and images/ at the run's top level."""
    write_config(run, **config)
    judge = "rules" if config.get("judge_kind") == "rules" else "openai:gpt-4o"
    write_metrics(run, GRIT_QWEN_DATASETS if datasets is None else datasets, judge=judge)
    write_samples(run)
    return run


GRPO_TRAINING = {"algorithm": {"name": "grpo"}, "trainer": {"warm_start_sft_steps": 250}}


def make_training_run(run: Path, steps: tuple[int, ...] = (3, 6), **config: Any) -> Path:
    """A training run (GRPO with a warm start unless `training` says otherwise): config, metrics.jsonl,
    and eval/step_<N>/metrics.json for each evaluated step."""
    config.setdefault("training", GRPO_TRAINING)
    write_config(run, **config)
    write_curves(run, steps=max(steps), eval_every=min(s for s in steps if s > 0))
    for step in steps:
        write_metrics(run / "eval" / f"step_{step}", {"vsr": {"n": 4, "acc": step / 10, "giou": 0.1, "giou_paper": 0.1}},
                      judge="rules")
        write_samples(run / "eval" / f"step_{step}", count=2)
    return run
