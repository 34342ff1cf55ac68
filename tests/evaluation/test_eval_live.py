"""Live greedy evaluation of the tiny model: the Hydra entry end to end, and the call the training loop makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]
SMALL_DATA = ["dataset.synthetic.num_train=48", "dataset.synthetic.num_val=8"]  # the training tests' set (cached)


def extra_eval_file(folder: Path) -> Path:
    """Two rows: one with its image, one whose image is missing (recorded and counted, never scored)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (112, 112), (250, 250, 250)).save(folder / "white.png")
    rows = [
        {"question": "How many squares?", "answer": "0", "image": "white.png", "width": 112, "height": 112,
         "bboxs": [], "dataset": "extra"},
        {"question": "How many circles?", "answer": "1", "image": "lost.png", "width": 112, "height": 112,
         "bboxs": [[1, 1, 50, 50]], "dataset": "extra"},
    ]
    path = folder / "extra.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_evaluate_entry_on_the_tiny_model(tmp_path, grit_cache, tiny_model_paths):
    extra = extra_eval_file(tmp_path / "extra")
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, "-m", "grit_exp.evaluate", *SMALL_DATA, "rollout.max_new_tokens=6", "eval.batch_size=8",
         "eval.num_pictures=3", f"dataset.eval=[{{path:{extra},image_root:{extra.parent},name:extra}}]",
         f"hydra.run.dir={run}"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, "GRIT_EXP_CACHE": str(grit_cache)},
    )
    assert out.returncode == 0, out.stderr[-4000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["_meta"]["decoding"] == "greedy" and metrics["_meta"]["max_new_tokens"] == 6
    assert metrics["_meta"]["model"] == "tiny_qwen2_5_vl" and metrics["_meta"]["judge"] == "rules"
    synthetic = [d for d in metrics if d.startswith("synth_")]
    assert synthetic and sum(metrics[d]["n"] for d in synthetic) == 8
    extra_metrics = metrics["extra"]
    assert (extra_metrics["n"], extra_metrics["n_scored"], extra_metrics["missing_images"]) == (2, 1, 1)
    assert extra_metrics["n_giou"] == 0  # the only row with GT boxes had no image: not scored as 0
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 10
    for s in samples:
        if s["image_missing"]:
            assert s["completion"] is None and s["metrics"]["giou"] is None and "image missing" in s["errors"][0]
        else:
            assert isinstance(s["completion"], str) and 1 <= s["completion_tokens"] <= 6
            assert s["geometry"]["family"] == "qwen2_5_vl" and set(s["rewards"]) and s["reward"] is not None
    assert len(list((run / "images").glob("*.png"))) == 3 and (run / "report.html").stat().st_size > 1000
    assert (run / "run_info.json").is_file() and (run / ".hydra" / "config.yaml").is_file()
    assert json.loads((run / "metrics.jsonl").read_text())["step"] == 0


@pytest.mark.slow
def test_training_loop_call_writes_eval_step_dir(tmp_path, grit_cache, tiny_model_paths):
    """`evaluate_model` on a training config (no eval/metrics nodes): what training calls every eval_every steps."""
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.evaluation.runner import evaluate_model
    from grit_exp.judge import build_judge
    from grit_exp.models import build_adapter

    cfg = compose_config("train", *SMALL_DATA, "dataset.eval_num_samples=4", "rollout.max_new_tokens=6",
                         "eval.batch_size=2")
    _, eval_sets = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu")
    out = tmp_path / "run" / "eval" / "step_3"
    result = evaluate_model(cfg, adapter, model, build_judge(cfg.judge), eval_sets, out, step=3)
    assert sorted(p.name for p in out.iterdir()) == ["images", "metrics.json", "report.html", "samples.jsonl"]
    assert result.metrics["_meta"]["step"] == 3 and result.metrics["_meta"]["decoding"] == "greedy"
    assert sum(v["n"] for k, v in result.metrics.items() if k != "_meta") == 4
    flat = result.flat
    assert any(k.endswith("/giou_paper") for k in flat) and all(k.startswith("eval/") for k in flat)
    assert all(isinstance(v, int | float) for v in flat.values())
