"""The training entry end to end on the tiny model: it learns something, and resume is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]

TINY_RUN = [
    "dataset.synthetic.num_train=48",
    "dataset.synthetic.num_val=8",
    "trainer.max_steps=4",
    "trainer.prompts_per_step=2",
    "algorithm.num_generations=4",  # the demo's G = 8 would double every step here
    "trainer.micro_batch_size=4",
    "trainer.eval_every=2",
    "trainer.save_every=2",
    "trainer.warm_start_sft_steps=80",  # a short cached warm start: sampled completions then differ in reward
    "trainer.warm_start_batch_size=16",
    "trainer.warm_start_learning_rate=2e-3",
    "eval.batch_size=8",
    "rollout.max_new_tokens=40",
    "seed=3",
]


def train(run_dir: Path, *overrides: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "grit_exp.train", *TINY_RUN, f"hydra.run.dir={run_dir}", *overrides],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def finish(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]
    return out


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def final_weights(run_dir: Path, step: int = 4) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoints" / f"step_{step}" / "model" / "model.safetensors")


def test_run_writes_metrics_checkpoints_and_summary(tmp_path, grit_cache, tiny_model_paths):
    run = tmp_path / "run"
    finish(train(run, cache=grit_cache))
    records = metrics(run)
    train_steps = [r for r in records if "train/reward" in r]
    assert [r["step"] for r in train_steps] == [1, 2, 3, 4]
    for r in train_steps:
        for key in ("train/loss", "train/kl", "train/advantage_abs", "train/frac_zero_std", "time/rollout_s",
                    "time/reward_s", "time/update_s"):
            assert r[key] is not None and r[key] == r[key], key
        assert any(k.startswith("train/reward/") for k in r)
    assert any(k.startswith("eval/synth_count/") for r in records for k in r)
    # the demo's sampled evaluation (eval.sampled_k=4): the objective GRPO optimises, per eval
    sampled = [r["eval/synth_count/reward_sampled"] for r in records if "eval/synth_count/reward_sampled" in r]
    assert len(sampled) == 3 and all(v == v for v in sampled)  # steps 0, 2, 4
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_2", "step_4"], "keep_last=2 and no temp dirs"
    assert (run / "reward_curve.png").stat().st_size > 1000
    for step in ("untrained", "step_0", "step_2", "step_4"):  # the evaluation module at every eval
        assert (run / "eval" / step / "metrics.json").exists() and (run / "eval" / step / "report.html").exists()
    assert "untrained" in (run / "before_after.txt").read_text()
    info = json.loads((run / "run_info.json").read_text())
    assert info["data_fingerprint"] and "torch" in info["packages"]
    # GRPO changed the parameters of the warm-started model
    assert any(r["train/frac_zero_std"] < 1 for r in train_steps), "some groups must carry a learning signal"
    warm = next((grit_cache / "warm_start").glob("*/model.safetensors"))
    initial, trained = load_file(warm), final_weights(run)
    assert initial.keys() == trained.keys()
    assert any(not torch.equal(initial[k], trained[k]) for k in initial)


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, grit_cache, tiny_model_paths):
    straight = tmp_path / "straight"
    finish(train(straight, cache=grit_cache))

    resumed = tmp_path / "resumed"
    proc = train(resumed, cache=grit_cache)
    deadline = time.time() + 300
    while not (resumed / "checkpoints" / "step_2" / "checkpoint.json").exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (resumed / "checkpoints" / "step_4").exists(), "killed before the end"
    finish(train(resumed, "trainer.resume=auto", cache=grit_cache))

    a, b = final_weights(straight), final_weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    drop = ("time/",)
    clean = lambda rs: [{k: v for k, v in r.items() if not k.startswith(drop)} for r in rs]  # noqa: E731
    assert clean(metrics(straight)) == clean(metrics(resumed))


def test_bad_config_fails_fast_without_loading(tmp_path, grit_cache):
    proc = train(tmp_path / "bad", "trainer.micro_batch_size=3", cache=grit_cache)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "trainer.micro_batch_size=3" in out
