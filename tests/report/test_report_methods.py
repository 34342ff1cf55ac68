"""A result's Table 1 method comes from how its weights were made, never from the prompt alone."""

from __future__ import annotations

import pytest

from grit_exp.reporting import build_table1, collect_results, render_markdown
from tests.helpers.run_dirs import make_evaluate_run, make_training_run, write_metrics


def method_of(root) -> str:
    (result,) = collect_results([root])
    return result.method


def test_base_model_with_grit_prompt_is_cot_not_grit(tmp_path):
    make_evaluate_run(tmp_path / "run", prompt="grit", model_path="Qwen/Qwen2.5-VL-3B-Instruct")
    (row,) = build_table1(collect_results([tmp_path]))
    assert row.result.method == "cot"
    assert "| Qwen2.5-VL-3B | CoT | ours |" in render_markdown([row])


@pytest.mark.parametrize(("prompt", "method"), [("direct", "direct"), ("cot", "cot"), ("icl1", "icl1"),
                                                ("sft", "sft_prompt_untrained")])
def test_base_model_method_from_prompt(tmp_path, prompt, method):
    make_evaluate_run(tmp_path / "run", prompt=prompt)
    assert method_of(tmp_path) == method


def test_released_grit_checkpoint_is_grit(tmp_path):
    make_evaluate_run(tmp_path / "run", model_path="yfan1997/GRIT-20-Qwen2.5-VL-3B")
    assert method_of(tmp_path) == "grit"


@pytest.mark.parametrize(("algorithm", "method"), [("grpo", "grit"), ("dapo", "grit"), ("sft", "sft")])
def test_checkpoint_of_a_training_run_takes_its_algorithm(tmp_path, algorithm, method):
    train = tmp_path / "train"
    make_training_run(train, training={"algorithm": {"name": algorithm}, "trainer": {"warm_start_sft_steps": 0}})
    evaluated = tmp_path / "evals" / "run"
    make_evaluate_run(evaluated, model_path=str(train / "checkpoints" / "step_6" / "model"))
    assert method_of(tmp_path / "evals") == method


def test_checkpoint_whose_run_is_gone_is_trained_and_warm_start_is_sft(tmp_path):
    make_evaluate_run(tmp_path / "a" / "run", model_path="/gone/run/checkpoints/step_6/model")
    assert method_of(tmp_path / "a") == "trained"
    make_evaluate_run(tmp_path / "b" / "run", model_path="/home/u/.cache/grit_exp/warm_start/0123abcd")
    assert method_of(tmp_path / "b") == "sft"


def test_explicit_table1_method_wins(tmp_path):
    make_evaluate_run(tmp_path / "run", prompt="grit", table1={"model": "qwen2_5_vl_3b", "method": "grit"})
    assert method_of(tmp_path) == "grit"


def test_training_run_steps_untrained_warm_start_and_grpo(tmp_path):
    run = make_training_run(tmp_path / "train", steps=(0, 3, 6))
    write_metrics(run / "eval" / "untrained", {"vsr": {"n": 4, "acc": 0.0}}, judge="rules")
    assert [(r.kind, r.step) for r in collect_results([tmp_path])] == [("train_eval", 6)]  # untrained: all_steps only
    every = collect_results([tmp_path], all_steps=True)
    by_label = {r.label.split("@")[1]: r.method for r in every}
    assert by_label == {"untrained": "cot", "0": "sft", "3": "grit", "6": "grit"}


def test_sft_training_run_step0_is_the_base_model(tmp_path):
    make_training_run(tmp_path / "sft", steps=(0, 3), training={"algorithm": {"name": "sft"}, "trainer": {}})
    assert [r.method for r in collect_results([tmp_path], all_steps=True)] == ["cot", "sft"]
