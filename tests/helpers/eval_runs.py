"""Real evaluation runs over replayed completions, for the report tests: every metric key the report reads
then comes from files that `grit_exp.evaluation.runner.run_evaluation` wrote, never from a hand-written dict.

`benchmark_rows(variant)` gives one small replay row set per Table 1 benchmark, with the `dataset`
spellings of GRIT_data (vsr, tallyqa, gqa, mathvista, mme_count, mme_position, ovd_position);
`variant` changes which answers are right, so two runs give different numbers. `evaluate_rows`
writes the image and replay file, saves the composed config where Hydra would (`<run>/.hydra/config.yaml`)
and runs `python -m grit_exp.evaluate`'s job in-process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from PIL import Image

from grit_exp.evaluation.runner import run_evaluation
from tests.helpers.configs import compose_config

SIZE = (56, 28)  # Qwen grid [1, 2, 4] -> input 56 x 28: model boxes are original pixels
GT = [2, 2, 20, 14]


def _chain(box: list[int], answer: str) -> str:
    return (f'<think> the object {{"bbox_2d": {box}, "label": "thing"}} </think>'
            f"<rethink> it is there </rethink><answer>{answer}</answer>")


def benchmark_rows(variant: int = 0) -> list[dict[str, Any]]:
    """Replay rows (with completions) for every Table 1 benchmark; `variant` shifts right / wrong answers."""
    rows = []
    spec = [("vsr", "yes"), ("tallyqa", "2"), ("gqa", "cat"), ("mathvista", "7"), ("mme_count", "Yes"),
            ("mme_position", "No")]
    for dataset, answer in spec:
        for k in range(3):
            right = k < 2 - variant  # variant 0: 2 of 3 right; 1: 1 of 3
            box = GT if k != 2 else [2, 2, 11, 14]  # one half-width box per set: GIoU 0.5 there
            rows.append({"question": f"{dataset} question {k}?", "answer": answer,
                         "completion": _chain(box, answer if right else "something else"),
                         "bboxs": [GT] if dataset not in ("mathvista", "mme_count", "mme_position") else [],
                         "dataset": dataset})
    for k in range(2):  # OVD: the answer is a box
        box = GT if k == 0 and variant == 0 else [2, 2, 11, 14]
        rows.append({"question": f"the object {k}", "answer": str(GT), "completion": _chain(box, "there"),
                     "bboxs": [GT], "dataset": "ovd_position"})
    for row in rows:
        row.update(image="img.png", width=SIZE[0], height=SIZE[1], image_grid_thw=[1, 2, 4])
    return rows


def evaluate_rows(folder: Path, rows: list[dict[str, Any]], *overrides: str) -> Path:
    """Replay `rows` through a real evaluation (conf/eval.yaml, rules judge unless overridden); returns the run dir."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", SIZE, (200, 200, 200)).save(folder / "img.png")
    replay = folder / "replay.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = compose_config(
        "eval", "rollout=replay", f"rollout.path={replay}", "model.path=/nonexistent/model", "model.tiny_builder=null",
        "model.min_pixels=3136", "model.max_pixels=12544", *overrides)
    run = folder / "run"
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")  # what Hydra's main saves (the report reads it)
    run_evaluation(cfg, run)
    return run
