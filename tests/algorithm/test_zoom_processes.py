"""GRPO with zoom turns on 1 process and on 2 (torchrun, gloo; DDP and DeepSpeed ZeRO-3) gives the same losses
and final weights within float32 reduction tolerance (as tests/training/test_engines_equivalent.py): every
other completion writes a zoom call (zoom_call_hook/sitecustomize.py), so the update runs over crops on every
process, and the processes run the vision tower as often in each pass (ZeRO-3 would hang otherwise). A run
stopped at a checkpoint and resumed ends exactly where the uninterrupted run does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
HOOK = Path(__file__).resolve().parent / "zoom_call_hook"
RUN = [
    "rollout.zoom.enabled=true", "reward=grit_zoom", "rollout.temperature=1.0", "trainer.max_steps=2",
    "trainer.warm_start_sft_steps=0", "dataset.synthetic.num_train=16", "dataset.synthetic.num_val=2",
    "trainer.prompts_per_step=2", "algorithm.num_generations=4", "trainer.micro_batch_size=4",
    "trainer.eval_on_start=false", "trainer.eval_every=100", "eval.sampled_k=0", "trainer.save_every=2",
    "rollout.max_new_tokens=32", "algorithm.loss_aggregation=token_mean", "algorithm.scale_rewards=batch",
    "seed=2",
]
LOSS_TOL, WEIGHT_TOL = 1e-6, 1e-5


def _call_ids(cache: Path) -> str:
    from grit_exp.models import build_adapter
    from tests.helpers.configs import compose_config

    os.environ.setdefault("GRIT_EXP_CACHE", str(cache))
    tokenizer = build_adapter(compose_config("train").model).tokenizer
    return ",".join(str(t) for t in tokenizer("<zoom>[10, 10, 60, 50]</zoom>", add_special_tokens=False)["input_ids"])


def _train(processes: int, cluster: str, run_dir: Path, cache: Path, call: str, *extra: str,
           expect: str | None = None) -> Path:
    entry = ["-m", "grit_exp.train", *RUN, f"cluster={cluster}", f"hydra.run.dir={run_dir}", *extra]
    if processes == 1:
        cmd = [sys.executable, *entry]
    else:
        cmd = [shutil.which("torchrun", path=str(Path(sys.executable).parent)), "--standalone", "--nproc_per_node",
               str(processes), *entry]
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HOOK),
           "GRIT_TEST_ZOOM_CALL": call}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert expect is None or expect in out.stdout + out.stderr, (expect, out.stderr[-3000:])
    return run_dir


def _losses(run: Path) -> list[float]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in records if "train/loss" in r]


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["ddp", "node8_zero3"])
def test_two_processes_equal_one_with_zoom_turns(cluster, tmp_path, grit_cache, tiny_model_paths):
    call = _call_ids(grit_cache)
    one = _train(1, "local", tmp_path / "one", grit_cache, call)
    two = _train(2, cluster, tmp_path / "two", grit_cache, call)
    records = [json.loads(line) for line in (one / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train/reward/zoom_format"] > 0 and r["train/frac_zero_std"] < 1 for r in records
               if "train/loss" in r), "completions zoomed and groups had spread"
    a, b = _losses(one), _losses(two)
    assert len(a) == len(b) == 2 and all(abs(x - y) <= LOSS_TOL for x, y in zip(a, b, strict=True)), (a, b)
    wa = load_file(one / "checkpoints" / "step_2" / "model" / "model.safetensors")
    wb = load_file(two / "checkpoints" / "step_2" / "model" / "model.safetensors")
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert worst <= WEIGHT_TOL, worst


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_with_zoom_turns(tmp_path, grit_cache, tiny_model_paths):
    call = _call_ids(grit_cache)
    constant = ("trainer.lr_scheduler=constant", "trainer.save_every=1")  # max_steps then changes nothing else
    straight = _train(1, "local", tmp_path / "straight", grit_cache, call, *constant, "trainer.max_steps=3")
    resumed = _train(1, "local", tmp_path / "resumed", grit_cache, call, *constant, "trainer.max_steps=1")
    _train(1, "local", resumed, grit_cache, call, *constant, "trainer.max_steps=3", "trainer.resume=auto",
           expect="at step 1")  # resumed from the step-1 checkpoint, not started over
    a = load_file(straight / "checkpoints" / "step_3" / "model" / "model.safetensors")
    b = load_file(resumed / "checkpoints" / "step_3" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    assert _losses(straight) == _losses(resumed)
