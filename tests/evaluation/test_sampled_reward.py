"""`eval/<dataset>/reward_sampled`: K completions per row sampled at the rollout temperature, scored
with the training reward, on the tiny model (the call the training loop makes)."""

from __future__ import annotations

import json

import pytest

from grit_exp.errors import ConfigError
from tests.helpers.configs import compose_config

SMALL_DATA = ["dataset.synthetic.num_train=48", "dataset.synthetic.num_val=8"]  # the training tests' set (cached)


def compose_train(*overrides: str):
    return compose_config("train", *SMALL_DATA, "dataset.eval_num_samples=4", "rollout.max_new_tokens=5", *overrides)


def test_sampled_reward_is_logged_reproducible_and_follows_the_temperature(tmp_path, grit_cache, tiny_model_paths):
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.evaluation.items import dedup_items
    from grit_exp.evaluation.runner import evaluate_model, items_from_rows
    from grit_exp.evaluation.sampled_reward import sampled_reward
    from grit_exp.judge import build_judge
    from grit_exp.models import build_adapter

    cfg = compose_train("eval.sampled_k=3", "eval.batch_size=2")
    _, eval_sets = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu")
    judge = build_judge(cfg.judge)
    result = evaluate_model(cfg, adapter, model, judge, eval_sets, tmp_path / "eval", step=0)
    datasets = [k for k in result.metrics if not k.startswith("_")]
    assert datasets
    for name in datasets:
        values = result.metrics[name]
        assert values["reward_sampled_k"] == 3 and values["n_sampled"] == values["n_scored"]
        assert 0.0 <= values["reward_sampled"] <= 3.1
        assert result.flat[f"eval/{name}/reward_sampled"] == values["reward_sampled"]
    on_disk = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert on_disk["_meta"]["sampled"]["k"] == 3 and on_disk["_meta"]["sampled"]["temperature"] == cfg.rollout.temperature
    assert on_disk[datasets[0]]["reward_sampled"] == result.metrics[datasets[0]]["reward_sampled"]

    unique, _ = dedup_items(items_from_rows(eval_sets))
    # per-completion seeds: the same numbers whatever the batch layout, and again on a second call
    again = sampled_reward(cfg, adapter, model, judge, unique, k=3, batch_size=3)
    assert {n: v["reward_sampled"] for n, v in again.items()} == {n: result.metrics[n]["reward_sampled"] for n in datasets}
    # at a vanishing temperature the samples are the greedy completions: the same reward as the greedy
    # evaluation's (which scores through the evaluation's own path), row by row averaged
    cold = compose_train("eval.sampled_k=2", "rollout.temperature=1e-5", "rollout.top_k=0")
    frozen = sampled_reward(cold, adapter, model, judge, unique, k=2, batch_size=4)
    for name in datasets:
        assert frozen[name]["reward_sampled"] == pytest.approx(result.metrics[name]["reward"], abs=1e-9), name


def test_sampled_k_must_not_be_negative(compose_eval):
    from grit_exp.config import validate_eval
    from grit_exp.evaluation.settings import EvalOptions

    with pytest.raises(ConfigError, match=r"eval\.sampled_k=-1"):
        validate_eval(compose_eval("eval.sampled_k=-1"))
    assert EvalOptions.from_config(compose_eval("eval.sampled_k=4")).sampled_k == 4
    assert EvalOptions.from_config(compose_train("eval.sampled_k=2")).sampled_k == 2
