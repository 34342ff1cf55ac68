"""Every row of the paper's Table 1 is an evaluation experiment (conf/eval_experiment/) that composes with
conf/eval.yaml, passes the evaluation's checks and names its row; the report reads the row back."""

from __future__ import annotations

import os

import pytest
from omegaconf import OmegaConf

from grit_exp.config import EvalConfig, validate_eval
from grit_exp.config.typed import to_typed
from grit_exp.errors import ConfigError
from grit_exp.hydra_app import CONF_DIR
from grit_exp.reporting import PAPER_TABLE1
from grit_exp.reporting.collect import describe_run
from tests.helpers.configs import compose_config, compose_dictconfig

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "eval_experiment").glob("*.yaml"))
BASE_CHECKPOINTS = {"qwen2_5_vl_3b": "Qwen/Qwen2.5-VL-3B-Instruct", "internvl3_2b": "OpenGVLab/InternVL3-2B-Instruct"}  # converted: conf/model/internvl3_2b_instruct.yaml


def test_one_experiment_per_paper_row():
    assert EXPERIMENTS == sorted(f"table1_{model}_{method}" for model, method in PAPER_TABLE1)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_table1_experiment_composes_and_names_its_row(name, tmp_path):
    model, method = next((m, k) for m, k in PAPER_TABLE1 if name == f"table1_{m}_{k}")
    text = (CONF_DIR / "eval_experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert "[paper]" in text and "[code]" in text, "each file says which values come from the paper and which from the code"
    composed = compose_dictconfig("eval", f"eval_experiment={name}")
    needs_checkpoint = method == "sft" or (method == "grit" and model == "internvl3_2b")
    if needs_checkpoint:
        # no loadable published checkpoint: model.path=DIR must be given, else converting names model.path
        assert OmegaConf.to_container(composed.model)["path"] == "${oc.env:GRIT_CHECKPOINT}"
        if "GRIT_CHECKPOINT" not in os.environ:
            with pytest.raises(ConfigError, match=r"^model.path: .*GRIT_CHECKPOINT"):
                to_typed(composed, EvalConfig)
        given = compose_config("eval", f"eval_experiment={name}", "model.path=/ckpt/step_200/model")
        assert given.model.path == "/ckpt/step_200/model"
        with pytest.raises(ConfigError, match="model.path=/ckpt/step_200/model: no such directory"):
            validate_eval(given)
        cfg = compose_config("eval", f"eval_experiment={name}", f"model.path={BASE_CHECKPOINTS[model]}")  # loadable
    else:
        cfg = to_typed(composed, EvalConfig)
    validate_eval(cfg)
    assert (cfg.table1.model, cfg.table1.method) == (model, method)
    assert cfg.model.name == model and cfg.prompt.name == method
    assert cfg.dataset.name == "grit_eval" and not cfg.dataset.train and len(cfg.dataset.eval) == 6
    assert (cfg.judge.kind, cfg.judge.model) == ("openai", "gpt-4o")
    assert cfg.rollout.max_new_tokens == 1000 and list(cfg.rollout.stop_strings) == ["</answer>"]
    assert cfg.experiment_note
    if not needs_checkpoint:
        assert cfg.model.path == ("yfan1997/GRIT-20-Qwen2.5-VL-3B" if method == "grit" else BASE_CHECKPOINTS[model])
    # the report reads the saved config back into the same Table 1 row
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(composed, tmp_path / ".hydra" / "config.yaml")  # as Hydra saves it: before the conversion
    OmegaConf.save({"hydra": {"runtime": {"choices": {"eval_experiment": name}}}}, tmp_path / ".hydra" / "hydra.yaml")
    info = describe_run(tmp_path)
    assert (info["model"], info["method"], info["config_judge"]) == (model, method, "openai:gpt-4o")
    assert info["experiment"] == name
