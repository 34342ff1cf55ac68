"""Answers without `<answer>`, scored as the authors scored them, on replayed rows through real evaluation runs.

The released scoring gives an answer without `<answer>` 0 (the judge is not asked) for every method
but the direct query, whose whole response is judged. Each test runs `run_evaluation` on a replay
file and reads what it wrote: metrics.json (`no_answer_tag`, `acc`, `_meta`), metrics.jsonl
(`eval/<dataset>/no_answer_tag`), samples.jsonl and report.html.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_replay_fixture import replay_overrides
from PIL import Image

from grit_exp.evaluation.runner import run_evaluation

SIZE = (56, 28)
CHAIN = "<think> [2, 2, 20, 14] </think><rethink> checked </rethink>"
# (dataset, question, answer, completion, has <answer>, rules-judge score of the whole completion)
LINES = [
    ("vsr", "Is the cat left of the dog?", "yes", CHAIN + "<answer>yes</answer>", True, None),
    ("vsr", "Is the cup on the table?", "yes", "yes", False, 1.0),  # untagged, right when judged whole
    ("vsr", "Is the bird above the car?", "no", "no", False, 1.0),
    ("vsr", "Is the man behind the tree?", "no", CHAIN + "<answer>yes</answer>", True, None),
    ("tallyqa", "How many apples?", "2", "2", False, 1.0),
    ("tallyqa", "How many pears?", "3", CHAIN + "<answer>3</answer>", True, None),
]


def write_replay(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", SIZE, (200, 200, 200)).save(folder / "img.png")
    rows = [{"question": q, "answer": a, "image": "img.png", "width": SIZE[0], "height": SIZE[1],
             "bboxs": [[2, 2, 20, 14]], "dataset": d, "completion": c, "image_grid_thw": [1, 2, 4]}
            for d, q, a, c, _, _ in LINES]
    path = folder / "replay.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def evaluate(compose_eval, tmp_path: Path, *overrides: str) -> Path:
    replay = write_replay(tmp_path / "replay")
    run = tmp_path / "run"
    run_evaluation(compose_eval(*replay_overrides(replay, *overrides)), run)
    return run


def written(run: Path) -> tuple[dict, dict, list[dict]]:
    metrics = json.loads((run / "metrics.json").read_text())
    curve = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    return metrics, curve, samples


def untagged_count(dataset: str) -> int:
    return sum(1 for d, *_, tagged, _ in LINES if d == dataset and not tagged)


def test_default_scores_an_untagged_answer_zero_and_counts_it(compose_eval, tmp_path):
    metrics, curve, samples = written(evaluate(compose_eval, tmp_path))
    assert metrics["_meta"]["judged_answer"] == "tagged" and metrics["_meta"]["untagged_answer"] == "zero"
    for dataset in ("vsr", "tallyqa"):
        assert metrics[dataset]["no_answer_tag"] == untagged_count(dataset)
        assert curve[f"eval/{dataset}/no_answer_tag"] == untagged_count(dataset)
    # vsr: tagged right (1), two untagged (0, 0), tagged wrong (0) -> 1/4; tallyqa: untagged (0), tagged right (1)
    assert metrics["vsr"]["acc"] == pytest.approx(0.25) and metrics["tallyqa"]["acc"] == pytest.approx(0.5)
    assert metrics["vsr"]["n_judged"] == 4, "an untagged answer counts in ACC as 0"
    for sample, (*_, tagged, _) in zip(samples, LINES, strict=True):
        assert sample["answer_tag"] is tagged
        if not tagged:
            assert sample["judged_text"] == "none (no <answer>)" and sample["metrics"]["acc"] == 0.0
            assert sample["judge_raw"] is None, "the judge was not asked"
    page = (tmp_path / "run" / "report.html").read_text()
    assert "no &lt;answer&gt;" in page and "untagged_answer <b>zero</b>" in page


def test_judge_whole_completion_is_the_named_lenient_option(compose_eval, tmp_path):
    metrics, curve, samples = written(evaluate(compose_eval, tmp_path, "eval.untagged_answer=judge_whole_completion"))
    assert metrics["_meta"]["untagged_answer"] == "judge_whole_completion"
    assert metrics["vsr"]["acc"] == pytest.approx(0.75) and metrics["tallyqa"]["acc"] == pytest.approx(1.0)
    assert metrics["vsr"]["no_answer_tag"] == untagged_count("vsr"), "counted whatever the rule"
    assert {s["judged_text"] for s in samples if not s["answer_tag"]} == {"whole_completion"}


def test_the_direct_prompt_judges_the_whole_response(compose_eval, tmp_path):
    metrics, curve, samples = written(evaluate(compose_eval, tmp_path, "prompt=direct"))
    assert metrics["_meta"]["judged_answer"] == "whole_response" and metrics["_meta"]["untagged_answer"] == "zero"
    assert {s["judged_text"] for s in samples} == {"whole_completion"}, "tagged or not, the whole response is judged"
    untagged = [s for s in samples if not s["answer_tag"]]
    assert [s["metrics"]["acc"] for s in untagged] == [1.0, 1.0, 1.0]
    assert curve["eval/vsr/no_answer_tag"] == untagged_count("vsr")


def test_an_unknown_rule_names_the_key(compose_eval):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="untagged_answer"):
        compose_eval("eval.untagged_answer=whole")
