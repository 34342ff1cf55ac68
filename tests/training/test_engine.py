"""The training engine's configuration and precision, in-process on CPU (the multi-process runs are in
test_engines_equivalent.py): cluster configs compose and their DeepSpeed files pass DeepSpeed's own
parser; trainable weights are fp32 masters, so bf16 compute at the paper's learning rate still
changes (nearly) every weight; the schedule is transformers'."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from safetensors.torch import load_file

from grit_exp.cluster.engine import REPO_ROOT, deepspeed_config, resolve_mixed_precision
from grit_exp.config import validate_train
from grit_exp.errors import ConfigError
from grit_exp.training.run import build_scheduler, run_training
from tests.helpers.configs import compose_config

SMALL = ["dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "trainer.prompts_per_step=2",
         "trainer.micro_batch_size=2", "trainer.warm_start_sft_steps=0", "trainer.eval_on_start=false",
         "rollout.max_new_tokens=6", "trainer.eval_every=100", "algorithm.num_generations=4", "eval.sampled_k=0"]


def compose_train(*overrides: str):
    return compose_config("train", *overrides)


@pytest.mark.parametrize("cluster,engine,stage", [("local", "ddp", None), ("ddp", "ddp", None),
                                                  ("node8", "deepspeed", 2), ("node8_zero3", "deepspeed", 3)])
def test_cluster_configs_compose_and_their_deepspeed_files_parse(cluster, engine, stage):
    cfg = compose_train(f"cluster={cluster}")
    validate_train(cfg)
    assert cfg.cluster.engine == engine
    assert {f.name for f in dataclasses.fields(cfg.cluster)} == {"name", "engine", "deepspeed_config", "backend", "timeout_s", "grad_reduce_dtype",
                                       "slurm"}, (
        "no key nothing reads")
    if stage is None:
        assert cfg.cluster.deepspeed_config is None
        return
    from deepspeed.runtime.config import DeepSpeedConfig

    filled = deepspeed_config(cfg.cluster.deepspeed_config, micro_batch_size=4, accumulation_steps=2, world_size=1,
                              max_grad_norm=1.0, mixed_precision="bf16")
    parsed = DeepSpeedConfig(filled)  # DeepSpeed's own parser and batch-size checks
    assert parsed.zero_optimization_stage == stage
    assert parsed.bfloat16_config.enabled and parsed.train_batch_size == 8 and parsed.gradient_clipping == 1.0
    raw = json.loads((REPO_ROOT / cfg.cluster.deepspeed_config).read_text())
    assert raw["train_micro_batch_size_per_gpu"] == "auto", "batch sizes come from trainer.*, not the JSON"


def test_paper_experiments_use_zero2_bf16():
    for name in ("grit_qwen2_5_vl_3b", "grit_internvl3_2b"):
        cfg = compose_train(f"experiment={name}")
        assert cfg.cluster.name == "node8" and cfg.trainer.mixed_precision == "bf16"
        assert cfg.algorithm.logprob_temperature == "one", "the released code scores raw logits"


def test_bad_engine_settings_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="cluster.deepspeed_config"):
        validate_train(compose_train("cluster.engine=deepspeed"))
    with pytest.raises(Exception, match="cluster.engine=fsdp"):  # an enum: refused when composing
        compose_train("cluster.engine=fsdp")
    with pytest.raises(ConfigError, match="no such file"):
        deepspeed_config(str(tmp_path / "missing.json"), micro_batch_size=1, accumulation_steps=1, world_size=1,
                         max_grad_norm=1.0, mixed_precision="no")
    broken = tmp_path / "broken.json"
    broken.write_text('{"zero_optimization": {"stage": 2,}}')
    with pytest.raises(ConfigError, match=r"broken.json:1"):
        deepspeed_config(str(broken), micro_batch_size=1, accumulation_steps=1, world_size=1, max_grad_norm=1.0,
                         mixed_precision="no")


def test_mixed_precision_auto_is_bf16_only_on_cuda():
    assert resolve_mixed_precision("auto", cuda=True) == "bf16"
    assert resolve_mixed_precision("auto", cuda=False) == "no"
    assert resolve_mixed_precision("bf16", cuda=False) == "bf16"


def test_cosine_schedule_is_transformers_and_counts_optimizer_steps():
    cfg = compose_train("trainer.lr_scheduler=cosine", "trainer.max_steps=10", "trainer.warmup_steps=0",
                        "trainer.learning_rate=1.0")
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    lrs = []
    for _ in range(10):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 1.0 and abs(lrs[5] - 0.5) < 1e-9 and lrs == sorted(lrs, reverse=True)


UP_PROJ = "model.language_model.layers.0.mlp.up_proj.weight"


def test_bf16_compute_keeps_fp32_masters_so_small_updates_are_not_lost(tmp_path, grit_cache, tiny_model_paths):
    """model.dtype=bfloat16 + bf16 compute + the paper's lr 2e-6: 3 steps change (nearly) every trainable
    weight. With bf16 weights updated in place (the old trainer) most of these updates round away."""
    run = tmp_path / "bf16"
    cfg = compose_train(*SMALL, "algorithm=sft", "trainer.max_steps=3", "trainer.save_every=3",
                        "trainer.learning_rate=2e-6", "trainer.lr_scheduler=constant", "model.dtype=bfloat16",
                        "trainer.mixed_precision=bf16")
    run_training(cfg, run_dir=run)
    assert json.loads((run / "engine.json").read_text())["mixed_precision"] == "bf16"
    from transformers import Qwen2_5_VLForConditionalGeneration

    start = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_paths["tiny_qwen2_5_vl"]).state_dict()
    masters = load_file(run / "checkpoints" / "step_3" / "state" / "model.safetensors")
    assert masters.keys() <= start.keys() and len(masters) > 50
    assert all(v.dtype == torch.float32 for v in masters.values()), "trainable weights are stored in fp32"
    changed = total = 0
    for name, value in masters.items():
        changed += int((value != start[name].float()).sum())
        total += value.numel()
    assert changed / total > 0.99, f"only {changed / total:.1%} of the weights changed"
    # what the old trainer did: the same AdamW update applied to bf16 weights
    weights = {k: v.to(torch.bfloat16) for k, v in start.items()}
    param = torch.nn.Parameter(weights[UP_PROJ].clone())
    opt = torch.optim.AdamW([param], lr=2e-6, weight_decay=0.0)
    for _ in range(3):
        param.grad = torch.randn_like(param)
        opt.step()
    assert (param.detach() != weights[UP_PROJ]).float().mean() < 0.2


def test_logprob_temperature_option(tmp_path):
    from grit_exp.algorithm.grpo import logprob_temperature

    assert logprob_temperature(compose_train("rollout.temperature=0.9")) == 0.9
    assert logprob_temperature(compose_train("rollout.temperature=0.9", "algorithm.logprob_temperature=one")) == 1.0


@pytest.mark.parametrize("builder", ["tiny_qwen2_5_vl", "tiny_internvl"])
def test_lora_leaves_the_vision_tower_alone_by_default(builder, tiny_model_paths):
    from grit_exp.models import build_adapter
    from grit_exp.training.run import apply_lora

    family = "qwen2_5_vl" if "qwen" in builder else "internvl"
    for exclude, expect_vision in ((True, False), (False, builder == "tiny_internvl")):
        cfg = compose_train(f"model={builder}", "model.lora.enabled=true", f"model.lora.exclude_vision={exclude}")
        assert cfg.model.family == family
        model = apply_lora(build_adapter(cfg.model).load_model("cpu"), cfg.model.lora)
        adapted = [n for n, _ in model.named_parameters() if "lora_A" in n]
        assert adapted and any("language_model" in n for n in adapted)
        assert any(("visual" in n or "vision_tower" in n) for n in adapted) == expect_vision, adapted[:5]


def test_grpo_scores_completions_at_the_chosen_temperature(grit_cache, tiny_model_paths):
    """The log-probs of the ratio and KL (grpo._logprobs) use rollout.temperature under "sampling" and raw
    logits under "one"."""
    import contextlib
    from types import SimpleNamespace

    from grit_exp.algorithm.grpo import _logprobs
    from grit_exp.data.prompts import build_user_text
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.models import build_adapter
    from grit_exp.rollout.hf import HFRollout

    base = ["dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "rollout.max_new_tokens=6",
            "rollout.temperature=0.5", "rollout.stop_strings=[]"]
    cfg = compose_train(*base)
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu")
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:2]]
    rollout = HFRollout(adapter, cfg.rollout).generate(model, rows[:2], texts, greedy=True)
    scored = {}
    for choice in ("sampling", "one"):
        m = SimpleNamespace(engine=SimpleNamespace(autocast=contextlib.nullcontext), adapter=adapter,
                            cfg=compose_train(*base, f"algorithm.logprob_temperature={choice}"))
        scored[choice] = _logprobs(m, model, [rollout])[0]
    with torch.no_grad():
        expected = {t: adapter.completion_logprobs(model, rollout.prompt, rollout.completion_ids,
                                                   rollout.completion_mask, temperature=t) for t in (0.5, 1.0)}
    assert torch.allclose(scored["sampling"], expected[0.5]) and torch.allclose(scored["one"], expected[1.0])
    assert not torch.allclose(scored["sampling"], scored["one"])


def test_deterministic_kernels_only_when_asked(monkeypatch):
    """trainer.deterministic: null is on without CUDA (CPU runs bit-reproducible) and off with CUDA; on with
    CUDA sets cuBLAS's workspace so that its kernels can be deterministic."""
    from grit_exp.cluster.engine import use_deterministic_algorithms

    before = torch.are_deterministic_algorithms_enabled()
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        assert compose_train().trainer.deterministic is True, "the CPU demo's values (conf/demo/cpu_train.yaml)"
        assert compose_train("model=qwen2_5_vl_3b").trainer.deterministic is None, "a real model: by device"
        assert use_deterministic_algorithms(None, cuda=False) is True and torch.are_deterministic_algorithms_enabled()
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        assert use_deterministic_algorithms(None, cuda=True) is False
        assert not torch.are_deterministic_algorithms_enabled() and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
        assert use_deterministic_algorithms(True, cuda=True) is True
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert use_deterministic_algorithms(False, cuda=False) is False
    finally:
        torch.use_deterministic_algorithms(before, warn_only=True)


def test_collective_timeout_is_checked_and_recorded(tmp_path, grit_cache, tiny_model_paths):
    with pytest.raises(ConfigError, match=r"cluster.timeout_s=0 must be > 0"):
        validate_train(compose_train("cluster.timeout_s=0"))
    run = tmp_path / "run"
    run_training(compose_train(*SMALL, "algorithm=sft", "trainer.max_steps=1", "cluster.timeout_s=60"), run_dir=run)
    engine = json.loads((run / "engine.json").read_text())
    assert engine["collective_timeout_s"] == 60 and engine["deterministic"] is True  # CPU: on by default


def test_warm_start_trains_fp32_masters_of_a_bf16_model(tmp_path, grit_cache, tiny_model_paths):
    """A bf16 model's warm start trains and saves fp32 weights: at a real model's lr most updates survive
    (in bf16 they round away, as test_bf16_compute_keeps_fp32_masters_so_small_updates_are_not_lost shows)."""
    from grit_exp.algorithm.sft import cached_warm_start
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.models import build_adapter

    cfg = compose_train(*SMALL, "model.dtype=bfloat16", "trainer.warm_start_sft_steps=3",
                        "trainer.warm_start_batch_size=2", "trainer.warm_start_learning_rate=2e-6")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    out = cached_warm_start(cfg, build_adapter(cfg.model), rows, tmp_path / "cache")
    warm = load_file(out / "model.safetensors")
    start = load_file(tiny_model_paths["tiny_qwen2_5_vl"] / "model.safetensors")
    assert all(v.dtype == torch.float32 for v in warm.values()), "fp32 master weights"
    changed = sum(int((warm[k] != start[k].float()).sum()) for k in warm if "visual" not in k)
    total = sum(warm[k].numel() for k in warm if "visual" not in k)
    assert changed / total > 0.9, f"only {changed / total:.1%} of the weights changed"


def test_padding_passes_are_one_micro_batch_each(grit_cache, tiny_model_paths):
    """A process with fewer kept groups pads with zero-weight passes of trainer.micro_batch_size rows (one of
    its own first-round micro-batches), not a whole group of G rows."""
    from types import SimpleNamespace

    from grit_exp.algorithm.advantages import advantages_from_rewards
    from grit_exp.algorithm.grpo import Selection, training_micro_batches
    from grit_exp.data.prompts import build_user_text
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.models import build_adapter
    from grit_exp.rollout.hf import HFRollout

    cfg = compose_train("dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "rollout.max_new_tokens=6",
                        "rollout.stop_strings=[]", "algorithm.num_generations=4", "trainer.micro_batch_size=2")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:2]]
    first_round = HFRollout(adapter, cfg.rollout).generate(adapter.load_model("cpu"), rows[:2], texts,
                                                           num_generations=4, greedy=True)
    rewards = torch.arange(8, dtype=torch.float64)  # another process trains the groups with spread
    sampled = advantages_from_rewards(rewards, 4, "group", 1e-4)
    selection = Selection(None, rewards, sampled, slice(0, 0), sampled, None)
    batches, advantages, real = training_micro_batches(SimpleNamespace(cfg=cfg), selection, first_round)
    assert real == 0 and len(batches) == 4, "as many passes as the first round's 8 completions in pairs"
    assert [len(b.rows) for b in batches] == [2] * 4 and all(a.equal(torch.zeros(2)) for a in advantages)
