"""Two real processes (torchrun, gloo on CPU): groups stay on their process, gradients are averaged,
so both processes keep identical parameters (the run checks it at every checkpoint and fails
otherwise); metrics are reduced and written once; every process's RNG state is checkpointed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_process_training_keeps_replicas_identical(tmp_path, grit_cache, tiny_model_paths):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun ships with torch"
    run = tmp_path / "run"
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "--master_port", "29533", "-m", "grit_exp.train",
         "dataset.synthetic.num_train=16", "dataset.synthetic.num_val=4", "trainer.max_steps=2",
         "trainer.prompts_per_step=4", "trainer.micro_batch_size=8", "trainer.warm_start_sft_steps=0",
         "trainer.eval_every=2", "trainer.save_every=2", "trainer.eval_batch_size=4", "rollout.max_new_tokens=8",
         "reward=grit_code", f"hydra.run.dir={run}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train/reward" in r] == [1, 2], "metrics written once, by rank 0"
    state = torch.load(run / "checkpoints" / "step_2" / "trainer_state.pt", weights_only=False)
    assert len(state["rng_per_rank"]) == 2
    weights = load_file(run / "checkpoints" / "step_2" / "model" / "model.safetensors")
    assert weights
    assert (run / "eval" / "step_2" / "metrics.json").exists()
