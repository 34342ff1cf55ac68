"""Training options end to end in-process on the tiny model: LoRA (adapters saved, reference = base
with adapters disabled, resume) and the W&B logger (offline, no secrets in its config)."""

from __future__ import annotations

import json

import pytest

from grit_exp.config import validate_train
from grit_exp.training.run import run_training
from tests.helpers.configs import compose_config

SMALL = ["dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "trainer.prompts_per_step=2",
         "trainer.micro_batch_size=8", "trainer.warm_start_sft_steps=0", "trainer.eval_on_start=false",
         "rollout.max_new_tokens=6", "trainer.eval_every=100", "algorithm.num_generations=4", "eval.sampled_k=0", "trainer.save_every=1"]


def compose_cfg(*overrides: str):
    cfg = compose_config("train", *SMALL, *overrides)
    validate_train(cfg)
    return cfg


def test_lora_saves_adapters_uses_base_as_reference_and_resumes(tmp_path, grit_cache, tiny_model_paths):
    run = tmp_path / "lora"
    cfg = compose_cfg("model.lora.enabled=true", "model.lora.r=4", "algorithm.beta=0.01", "trainer.max_steps=1")
    summary = run_training(cfg, run_dir=run)
    assert summary["reference_model_built"] is False, "LoRA: the reference is the base with adapters disabled"
    step = run / "checkpoints" / "step_1"
    assert (step / "adapter" / "adapter_model.safetensors").exists(), "the PEFT adapters beside the model"
    assert (step / "model" / "model.safetensors").exists() and (step / "model" / "processor_config.json").exists()
    assert not (step / "model" / "adapter_config.json").exists(), "model/ holds the merged weights"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_records = [r for r in records if "train/kl" in r]
    assert [r["step"] for r in train_records] == [1] and train_records[0]["train/kl"] is not None

    cfg2 = compose_cfg("model.lora.enabled=true", "model.lora.r=4", "algorithm.beta=0.01", "trainer.max_steps=2")
    run_training(cfg2, run_dir=run)  # resume=auto continues from step_1
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train/kl" in r] == [1, 2]


def test_wandb_logger_runs_offline_without_secrets(tmp_path, grit_cache, tiny_model_paths, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-test-000SECRET000")
    cfg = compose_cfg("logger=wandb", "trainer.max_steps=1", "judge.api_key=${oc.env:MY_JUDGE_KEY}")
    run = tmp_path / "wandb_run"
    run_training(cfg, run_dir=run)
    files = [p for p in (run / "wandb").rglob("*") if p.is_file()]
    assert files, "wandb wrote its offline run into the run directory"
    for path in [*files, *run.rglob("*.json*")]:
        if path.is_file():
            assert b"000SECRET000" not in path.read_bytes(), path


def test_sft_algorithm_trains_on_gold_chains(tmp_path, grit_cache, tiny_model_paths):
    run = tmp_path / "sft"
    run_training(compose_cfg("algorithm=sft", "trainer.max_steps=3", "trainer.learning_rate=1e-3"), run_dir=run)
    losses = [json.loads(line)["train/sft_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()
              if "train/sft_loss" in json.loads(line)]
    assert len(losses) == 3 and all(0 < x < 20 for x in losses)
    assert losses[-1] < losses[0], "supervised loss falls on the gold chains"


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cluster", ["local", "node8"])
def test_bf16_training_on_one_gpu(tmp_path, grit_cache, tiny_model_paths, cluster):
    """One GPU, bf16 compute over fp32 masters: plain, and DeepSpeed ZeRO-2 (a one-process group)."""
    run = tmp_path / cluster
    summary = run_training(compose_cfg("trainer.max_steps=2", "trainer.mixed_precision=bf16", f"cluster={cluster}",
                                       "trainer.save_every=2"), run_dir=run)
    assert summary["run_dir"]
    engine = json.loads((run / "engine.json").read_text())
    assert engine["device"].startswith("cuda") and engine["mixed_precision"] == "bf16"
    assert (run / "checkpoints" / "step_2" / "model" / "config.json").exists()


def test_a_run_reruns_from_its_saved_config(tmp_path, grit_cache, tiny_model_paths):
    """`--config-path RUN/.hydra --config-name config` re-runs a run exactly (same metrics)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache)}
    first = tmp_path / "first"
    args = [*SMALL, "trainer.max_steps=1", "trainer.eval_every=1", "seed=5"]
    cmd = [sys.executable, "-m", "grit_exp.train"]
    subprocess.run([*cmd, *args, f"hydra.run.dir={first}"], cwd=root, env=env, check=True, capture_output=True)
    again = tmp_path / "again"
    subprocess.run([*cmd, "--config-path", str(first / ".hydra"), "--config-name", "config", f"hydra.run.dir={again}"],
                   cwd=root, env=env, check=True, capture_output=True)
    strip = lambda p: [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")}  # noqa: E731
                       for line in (p / "metrics.jsonl").read_text().splitlines()]
    assert strip(first) == strip(again)
