"""Helpers of the SLURM sweep tests: the tiny training overrides, running a sweep, waiting."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The fast tiny training of tests/training/test_train_multiprocess.py
TINY = ["dataset.synthetic.num_train=16", "dataset.synthetic.num_val=4", "trainer.max_steps=2",
        "trainer.prompts_per_step=4", "trainer.micro_batch_size=8", "trainer.warm_start_sft_steps=0",
        "trainer.eval_every=2", "trainer.save_every=2", "eval.batch_size=4", "rollout.max_new_tokens=8",
        "reward=grit_code", "algorithm.num_generations=4", "eval.sampled_k=0"]



def run_sweep(args: list[str], sweep_dir: Path, env: dict[str, str], timeout: float = 400,
              background: bool = False) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "grit_exp.train", "-m", *args, f"hydra.sweep.dir={sweep_dir}"]
    if background:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def read_summary(sweep_dir: Path) -> dict:
    return json.loads((sweep_dir / "sweep_summary.json").read_text())


def wait_for(predicate, timeout: float, what: str, poll: float = 0.2) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
