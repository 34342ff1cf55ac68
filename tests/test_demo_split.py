"""The CPU demo's values apply only to the demo: every real model config composed with nothing else
gets the paper's training, rollout and evaluation values; the default (`make train`) keeps the demo's."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from grit_exp.config import validate_train
from grit_exp.errors import ConfigError
from grit_exp.hydra_app import CONF_DIR
from tests.helpers.configs import compose_config

# The tiny models are the groups with demo values (conf/demo/train_<group>.yaml); every other group, the
# real-width rehearsal model (built offline, real sizes) included, trains with a real run's values.
TINY_MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if (CONF_DIR / "demo" / f"train_{p.stem}.yaml").exists())
REAL_MODELS = sorted(p.stem for p in (CONF_DIR / "model").glob("*.yaml") if p.stem not in TINY_MODELS)

# `make train`'s values (conf/demo/cpu_train.yaml; chosen in benchmarks/README.md "GRPO on the CPU demo")
DEMO_TRAINER = dict(max_steps=100, prompts_per_step=16, micro_batch_size=16, learning_rate=1e-4, lr_scheduler="cosine",
                    warmup_steps=0, eval_every=20, save_every=20, keep_last=2, warm_start_sft_steps=500,
                    warm_start_batch_size=16, warm_start_learning_rate=1e-3)
# the demo's data (conf/demo/cpu_data.yaml), for training and evaluation: "How many red squares?" only
DEMO_DATA = dict(kind_weights=[1.0, 0.0, 0.0], count_targets=1, num_val=120)
DEMO_ALGORITHM = dict(num_generations=8, beta=0.04, loss_aggregation="token_mean")
# grit.md section 4 (paper / released code)
PAPER_TRAINER = dict(max_steps=200, prompts_per_step=32, learning_rate=2e-6, lr_scheduler="cosine", warmup_steps=0,
                     weight_decay=0.0, max_grad_norm=1.0, eval_every=50, warm_start_sft_steps=0)
PAPER_ROLLOUT = dict(temperature=0.9, top_k=50, top_p=1.0, max_new_tokens=1000, stop_strings=["</answer>"])


def compose_entry(name: str, overrides: list[str]):
    return compose_config(name, *overrides)


def test_the_model_groups_are_sorted_into_real_and_tiny():
    assert {"qwen2_5_vl_3b", "qwen2_5_vl_7b", "internvl3_2b", "real_width_qwen2_5_vl"} <= set(REAL_MODELS)
    assert set(TINY_MODELS) == {"tiny_qwen2_5_vl", "tiny_internvl"}
    for tiny in TINY_MODELS:  # every tiny model has its demo values, for both entries
        assert (CONF_DIR / "demo" / f"train_{tiny}.yaml").is_file() and (CONF_DIR / "demo" / f"eval_{tiny}.yaml").is_file()


@pytest.mark.parametrize("model", REAL_MODELS)
def test_a_real_model_alone_gets_the_paper_values(model):
    cfg = compose_entry("train", [f"model={model}"])
    assert cfg.demo_values is None
    assert {k: getattr(cfg.trainer, k) for k in PAPER_TRAINER} == PAPER_TRAINER
    assert {k: getattr(cfg.rollout, k) for k in PAPER_ROLLOUT} == PAPER_ROLLOUT
    assert list(cfg.dataset.synthetic.kind_weights) == [0.6, 0.2, 0.2] and cfg.dataset.synthetic.count_targets == 9
    assert (cfg.algorithm.num_generations, cfg.algorithm.beta) == (4, 0.01)
    assert cfg.algorithm.loss_aggregation == "seq_mean_token_mean" and cfg.eval.sampled_k == 0
    validate_train(cfg)
    eval_cfg = compose_entry("eval", [f"model={model}"])
    assert eval_cfg.demo_values is None and eval_cfg.rollout.max_new_tokens == 1000
    assert list(eval_cfg.rollout.stop_strings) == ["</answer>"]


@pytest.mark.parametrize("model", TINY_MODELS)
def test_the_demo_keeps_its_values(model):
    cfg = compose_entry("train", [] if model == "tiny_qwen2_5_vl" else [f"model={model}"])
    assert cfg.demo_values == "cpu_train"
    assert {k: getattr(cfg.trainer, k) for k in DEMO_TRAINER} == DEMO_TRAINER
    assert cfg.eval.sampled_k == 4 and cfg.eval.batch_size == 32
    assert {k: getattr(cfg.algorithm, k) for k in DEMO_ALGORITHM} == DEMO_ALGORITHM
    assert cfg.rollout.max_new_tokens == 128 and cfg.rollout.temperature == 0.7
    eval_cfg = compose_entry("eval", [f"model={model}"])
    assert eval_cfg.rollout.max_new_tokens == 96
    for entry in (cfg, eval_cfg):
        assert {k: getattr(entry.dataset.synthetic, k) for k in DEMO_DATA} == DEMO_DATA


def test_experiments_and_the_command_line_still_win_over_the_demo():
    cfg = compose_entry("train", ["experiment=grit_qwen2_5_vl_3b", "model=tiny_qwen2_5_vl"])
    assert cfg.trainer.learning_rate == 2e-6 and cfg.trainer.warm_start_sft_steps == 0  # the experiment's
    assert compose_entry("train", ["trainer.learning_rate=3e-5"]).trainer.learning_rate == 3e-5


def test_demo_values_on_a_real_checkpoint_fail_validation_naming_them(tiny_model_paths):
    checkpoint = tiny_model_paths["tiny_qwen2_5_vl"]  # an existing model directory, as a real checkpoint would be
    cfg = compose_entry("train", [f"model.path={checkpoint}", "model.tiny_builder=null"])
    with pytest.raises(ConfigError, match=r"trainer\.learning_rate.*trainer\.warm_start_sft_steps.*model=qwen2_5_vl_3b"):
        validate_train(cfg)


def test_train_yaml_documents_the_split():
    text = Path(CONF_DIR / "train.yaml").read_text()
    assert "optional demo: train_${model}" in text and "conf/demo/cpu_train.yaml" in text
    assert OmegaConf.load(CONF_DIR / "demo" / "cpu_train.yaml").demo_values == "cpu_train"
