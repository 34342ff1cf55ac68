"""Every shipped config composes; structural and semantic errors fail early with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from grit_exp.api_keys import to_plain
from grit_exp.config import TrainConfig, validate_train
from grit_exp.config.typed import to_typed
from grit_exp.errors import ConfigError
from grit_exp.hydra_app import CONF_DIR
from tests.helpers.configs import compose_config, compose_dictconfig

GROUPS = ["model", "dataset", "prompt", "reward", "judge", "rollout", "algorithm", "cluster", "logger"]
ROOT = Path(__file__).resolve().parents[1]


def compose_train(overrides: list[str]):
    return compose_config("train", *overrides)


# conf/experiment/ holds training recipes only; evaluation experiments (conf/eval_experiment/) are composed
# with conf/eval.yaml in tests/report/test_table1_experiments.py.


def every_option() -> list[tuple[str, str]]:
    out = []
    for group in GROUPS + ["experiment"]:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            out.append((group, path.stem))
    return out


def test_every_group_has_options():
    found = {g for g, _ in every_option()}
    assert set(GROUPS) <= found


@pytest.mark.parametrize(("group", "option"), every_option(), ids=lambda x: str(x))
def test_every_config_file_composes_and_validates(group, option):
    overrides = [f"{group}={option}"]
    if group == "rollout" and option == "replay":
        overrides.append("rollout.path=/tmp/completions.jsonl")
    cfg = compose_train(overrides)
    if group == "experiment":
        assert cfg.experiment_note, f"experiment {option} must say where its values come from (experiment_note)"
    if group == "dataset" and not cfg.dataset.train and not cfg.dataset.synthetic.enabled:
        with pytest.raises(ConfigError, match="no training data"):  # an eval-only set: composes, cannot train
            validate_train(cfg)
        return
    validate_train(cfg)


def test_misspelled_key_fails_at_compose_time():
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        compose_train(["algorithm.num_generation=4"])


def test_wrong_type_fails_at_compose_time():
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_train(["algorithm.beta=lots"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algorithm.num_generations=1"], "algorithm.num_generations=1 must be >= 2"),
        (["trainer.micro_batch_size=5"], "trainer.micro_batch_size=5 does not divide"),
        (["+reward.weights.no_such_term=1.0"], "no_such_term"),
        (["rollout=replay"], "rollout.path"),
        (["algorithm=sft", "algorithm.dynamic_sampling.enabled=true"], "algorithm=sft has no groups"),
        (["cluster.engine=deepspeed"], "needs cluster.deepspeed_config"),
        (["eval.batch_size=0"], "eval.batch_size=0 must be >= 1"),
        (["eval.checkpoint=/some/model"], "training evaluates the weights it trains"),
    ],
)
def test_semantic_errors_name_the_key(overrides, message):
    cfg = compose_train(overrides)
    with pytest.raises(ConfigError) as err:
        validate_train(cfg)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("override", "valid"),
    [
        ("algorithm.scale_rewards=median", "[group, batch, none]"),
        ("model.family=llava", "[qwen2_5_vl, internvl]"),
        ("dataset.on_error=ignore", "[raise, skip]"),
        ("rollout.on_error=ignore", "[raise, skip]"),
        ("judge.kind=gpt", "[rules, openai]"),
        ("cluster.backend=mpi", "[auto, nccl, gloo]"),
        ("trainer.mixed_precision=fp16", "[auto, bf16, no]"),
        ("logger.kind=tensorboard", "[jsonl, wandb]"),
    ],
)
def test_enumerated_values_fail_at_compose_time(override, valid):
    key, value = override.split("=")
    with pytest.raises(ConfigCompositionException) as err:
        compose_train([override])
    assert f"Invalid value '{value}', expected one of {valid}" in str(err.value.__cause__)
    assert f"full_key: {key}" in str(err.value.__cause__)


def test_enum_values_read_and_print_as_their_strings():
    composed = compose_dictconfig("train", "algorithm=sft", "cluster=node8")
    for cfg in (composed, to_typed(composed, TrainConfig)):  # as Hydra composes it, and as the run reads it
        assert cfg.algorithm.name == "sft" and f"{cfg.cluster.engine}" == "deepspeed" and str(cfg.model.dtype) == "float32"
        assert json.loads(json.dumps(to_plain(cfg)))["algorithm"]["name"] == "sft"
        assert OmegaConf.to_yaml(cfg.algorithm).startswith("name: sft\n")
    assert to_plain(to_typed(composed, TrainConfig)) == to_plain(composed)  # W&B's config is unchanged


def test_the_typed_config_keeps_the_key_interpolation_unresolved(monkeypatch):
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    composed = compose_dictconfig("train", "judge=openai", "judge.api_key=${oc.env:MY_JUDGE_KEY}")
    cfg = to_typed(composed, TrainConfig)  # the variable is unset: nothing is resolved into the config
    assert isinstance(cfg, TrainConfig) and cfg.judge.api_key == "${oc.env:MY_JUDGE_KEY}"
    assert cfg.judge.cache_path == f"{cfg.paths.cache_dir}/judge_cache.sqlite" and cfg.judge.kind == "openai"
    validate_train(cfg)


def test_a_saved_config_converts_like_the_composed_one(tmp_path):
    composed = compose_dictconfig("train", "algorithm=dapo")
    OmegaConf.save(composed, tmp_path / "config.yaml")
    saved = OmegaConf.load(tmp_path / "config.yaml")  # untyped, as --config-path RUN/.hydra reloads it
    assert to_typed(saved, TrainConfig) == to_typed(composed, TrainConfig)
    saved.trainer.max_steps = "many"
    with pytest.raises(ConfigError, match="trainer.max_steps"):
        to_typed(saved, TrainConfig)


def test_processes_must_divide_prompts():
    cfg = compose_train(["trainer.prompts_per_step=6"])
    with pytest.raises(ConfigError, match="not divisible by the 4 processes"):
        validate_train(cfg, world_size=4)


def test_cfg_job_prints_a_full_config_for_real_models():
    out = subprocess.run(
        [sys.executable, "-m", "grit_exp.train", "--cfg", "job", "model=internvl3_2b", "dataset=grit20"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for needle in ("OpenGVLab/InternVL3-2B-hf", "tallyqa_train_10.jsonl", "num_generations: 4", "judge:", "reward:"):
        assert needle in out.stdout


def test_bad_config_fails_before_any_model_loads(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "grit_exp.train", "algorithm.num_generations=1", f"hydra.run.dir={tmp_path}/run",
         f"paths.cache_dir={tmp_path}/cache"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode != 0
    assert "algorithm.num_generations=1 must be >= 2" in out.stderr
    assert not (tmp_path / "cache").exists(), "nothing is generated or built for a bad config"
