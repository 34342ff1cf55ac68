"""The vLLM push under ZeRO-3 gathers one module at a time, never the whole model (issue #18).

Two real processes over gloo, a tiny Qwen2.5-VL under DeepSpeed ZeRO-3 with every tensor sharded
(persistence threshold 0, as a real model's are): `gathered_weights` gives the same names and values
as `checkpoint_weights` of the whole model (LoRA merged), and at no yielded tensor are more than one
module's parameters (a LoRA layer: base weight, bias and adapters) gathered. Before the fix the GRPO
step gathered every parameter for the whole rollout (`TrainingEngine.generation_model`). Runs in the
main venv: vLLM is not needed to iterate what it would load (test_vllm_train.py pushes into vLLM).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_worker(tmp_path: Path, cache: Path, lora: bool) -> dict:
    config = json.loads((ROOT / "launchers" / "deepspeed" / "zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "zero3.json").write_text(json.dumps(config))
    out = tmp_path / f"report_{int(lora)}.json"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "tests/rollout/vllm_zero3_worker.py"),
                           str(out), str(tmp_path / "zero3.json"), str(int(lora))],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_the_push_gathers_one_module_at_a_time(tmp_path, grit_cache, tiny_model_paths, lora) -> None:
    report = run_worker(tmp_path, grit_cache, lora)
    assert report["sharded_params"] == report["params"] > 20, report
    assert report["sharded_at_start"], "the rollout got the model sharded, not gathered"
    assert report["names_equal"] and report["max_abs_diff"] == 0.0, report
    assert report["max_gathered_at_once"] <= (4 if lora else 2), report  # weight + bias (+ lora_A, lora_B)
    assert report["gathered_after"] == 0, report
    assert report["gathered_for_hf_generation"] == report["params"], "HF generation (and the push before) gathered all"
