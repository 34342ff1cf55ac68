"""`python -m grit_exp.train rollout=vllm`: two GRPO steps end to end with the colocated vLLM engine.

Runs in the vLLM venv (`make test-vllm`); elsewhere vllm is not importable and the module skips.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: `make test-vllm` runs these in .venv-vllm")

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_two_grpo_steps_with_vllm_rollouts(tmp_path, grit_cache, tiny_model_paths):
    run = tmp_path / "run"
    overrides = [
        "rollout=vllm", "rollout.vllm.kv_cache_memory_bytes=67108864", "rollout.vllm.enforce_eager=true",
        "dataset.synthetic.num_train=16", "dataset.synthetic.num_val=4", "trainer.max_steps=2",
        "trainer.prompts_per_step=2", "algorithm.num_generations=4", "trainer.micro_batch_size=4",
        "trainer.warm_start_sft_steps=0", "trainer.eval_on_start=false", "trainer.eval_every=100",
        "trainer.save_every=2", "rollout.max_new_tokens=24", "seed=5", f"hydra.run.dir={run}",
    ]
    # not this process's torch.distributed variables (an engine built by another test module sets them)
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    env.update(GRIT_EXP_CACHE=str(grit_cache), PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "grit_exp.train", *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [m for m in steps if "train/reward" in m]
    assert [m["step"] for m in train] == [1, 2]
    for m in train:
        assert m["train/completion_tokens"] > 0 and m["time/rollout_s"] > 0
        assert all(math.isfinite(v) for k, v in m.items() if k.startswith("train/"))
    model_dir = run / "checkpoints" / "step_2" / "model"
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "processor_config.json").is_file()
