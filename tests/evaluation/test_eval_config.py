"""conf/eval.yaml composes with every option of its groups; bad settings fail early, naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grit_exp.config import validate_eval
from grit_exp.errors import ConfigError
from grit_exp.evaluation.settings import EvalOptions
from grit_exp.hydra_app import CONF_DIR
from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]
# the groups whose options change what an evaluation does (all groups compose in tests/test_config.py)
GROUPS = ["model", "dataset", "judge", "rollout"]


def options() -> list[tuple[str, str]]:
    # rollout=vllm generates training's rollouts only (evaluation refuses it: tests/rollout/test_vllm_config.py)
    return [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml")) if (g, p.stem) != ("rollout", "vllm")]


@pytest.mark.parametrize(("group", "option"), options(), ids=lambda x: str(x))
def test_every_group_option_composes_and_validates(compose_eval, group, option):
    overrides = [f"{group}={option}"]
    if group == "rollout" and option == "replay":
        overrides.append("rollout.path=/tmp/completions.jsonl")
    validate_eval(compose_eval(*overrides))


def test_defaults_are_the_offline_demo(compose_eval):
    cfg = compose_eval()
    assert (cfg.model.name, cfg.dataset.name, cfg.judge.kind, cfg.rollout.kind) == ("tiny_qwen2_5_vl", "synthetic", "rules", "hf")
    assert cfg.rollout.max_new_tokens == 96  # eval.yaml's own value wins over the rollout group's default
    assert cfg.eval.consistency is False and cfg.eval.consistency_repeats == 3
    assert EvalOptions.from_config(cfg) == EvalOptions(batch_size=8, num_pictures=16, consistency=False,
                                                       consistency_repeats=3, seed=0)


def test_options_from_a_training_config_read_the_same_eval_node(compose_eval):
    train_cfg = compose_config("train", "seed=4")
    assert EvalOptions.from_config(train_cfg).batch_size == 32  # conf/train.yaml's
    train_cfg = compose_config("train", "eval.batch_size=5", "seed=4")
    # the demo's eval.sampled_k=4 (conf/demo/cpu_train.yaml) comes along
    assert EvalOptions.from_config(train_cfg) == EvalOptions(batch_size=5, seed=4, sampled_k=4)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["rollout=replay"], "rollout.path"),
        (["eval.batch_size=0"], "eval.batch_size=0 must be >= 1"),
        (["eval.consistency_repeats=0"], "eval.consistency_repeats=0 must be >= 1"),
        (["eval.sampled_k=-1"], "eval.sampled_k=-1 must be >= 0"),
        (["rollout.kind=vllm"], "rollout.kind='vllm' is not valid; choose one of 'hf', 'replay'"),
        (["dataset=grit_eval", "dataset.eval=[]"], "nothing to evaluate"),
        (["+reward.weights.no_such_term=1.0"], "no_such_term"),
    ],
)
def test_bad_settings_name_the_key(compose_eval, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate_eval(compose_eval(*overrides))


def test_misspelled_eval_key_fails_at_compose_time(compose_eval):
    with pytest.raises(Exception, match="batch_sise"):
        compose_eval("eval.batch_sise=3")


def test_a_literal_api_key_is_refused_before_anything_is_written(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "grit_exp.evaluate", "judge=openai", "judge.api_key=sk-abcdefghijklmnopqrstuvwxyz0123456789",
         f"hydra.run.dir={tmp_path}/run"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode != 0 and "refused to start" in (out.stderr + out.stdout)
    assert not (tmp_path / "run" / ".hydra").exists()
