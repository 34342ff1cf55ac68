"""Every Table 1 row says which preset trained it and which scored it, read from what the runs saved.

The evaluations are real (replayed completions through `run_evaluation`, which writes metrics.json
`_meta`); the training run behind a checkpoint is a saved conf/train.yaml composed with the reward
preset under test (what Hydra saves as `<run>/.hydra/config.yaml`).
"""

from __future__ import annotations

import csv
import io

import pytest
from omegaconf import OmegaConf

from grit_exp.reporting.collect import collect_results
from grit_exp.reporting.table1 import build_table1, render_csv, render_markdown
from tests.helpers.configs import compose_config
from tests.helpers.eval_runs import benchmark_rows, evaluate_rows


def saved_training_run(run, *overrides):
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(compose_config("train", *overrides), run / ".hydra" / "config.yaml")
    return run / "checkpoints" / "step_200" / "model"


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


def test_rows_name_the_reward_preset_judge_preset_and_untagged_rule(tmp_path, grit_cache, api_key):
    from grit_exp.testing.fake_judge_server import FakeJudgeServer

    code_ckpt = saved_training_run(tmp_path / "train_code", "reward=grit_code", "algorithm.advantage_eps=1e-8")
    paper_ckpt = saved_training_run(tmp_path / "train_paper", "reward=grit_paper")
    rows = benchmark_rows()[:6]
    with FakeJudgeServer() as server:
        judge = [f"judge.base_url={server.base_url}", "judge.cache_path=null"]
        evaluate_rows(tmp_path / "evals" / "a", rows, f"eval.checkpoint={code_ckpt}", "judge=openai_code", *judge)
        evaluate_rows(tmp_path / "evals" / "b", rows, f"eval.checkpoint={paper_ckpt}", "judge=openai", *judge,
                      "eval.untagged_answer=judge_whole_completion")
        evaluate_rows(tmp_path / "evals" / "c", rows, "prompt=direct", "judge=openai", *judge)
    table = build_table1(collect_results([tmp_path / "evals"]))
    by_run = {row.result.run_dir.parent.name: row.result for row in table}
    a, b, c = by_run["a"], by_run["b"], by_run["c"]
    assert a.training.startswith("reward=grit_code, advantage_eps=1e-08, ") and a.training.endswith(" per step")
    assert a.scoring == "judge=code, untagged=zero"
    assert b.training.startswith("reward=grit_paper, advantage_eps=0.0001, ")
    assert b.scoring == "judge=paper, untagged=judge_whole_completion"
    assert c.training == "untrained" and c.scoring == "judge=paper, whole response"

    markdown = render_markdown(table)
    header = markdown.splitlines()[0]
    assert "| trained with | scored with | judge | run |" in header
    assert f"| {a.training} | {a.scoring} | openai:gpt-4o |" in markdown
    lines = {line["run"].split("/")[0]: line for line in csv.DictReader(io.StringIO(render_csv(table)))}
    assert lines["a"]["judge_preset"] == "code" and lines["a"]["untagged_answer"] == "zero"
    assert lines["c"]["judged_answer"] == "whole_response" and lines["b"]["training"] == b.training
