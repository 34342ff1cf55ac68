"""The cross-modal consistency table of `python -m grit_exp.report`, filled from a real evaluation's files.

A replay evaluation over every benchmark with `eval.consistency=true` and the fake server as vision
judge (real HTTP, the openai client not mocked) writes metrics.json; the report's table must show,
per benchmark, the mean ± std over the 3 repeats that evaluation wrote (MME: per repeat the mean of
its subsets, worked out here).
"""

from __future__ import annotations

import json
import statistics

import pytest

from grit_exp.report import main, write_report
from tests.helpers.eval_runs import benchmark_rows, evaluate_rows


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, grit_cache):
    from grit_exp.testing.fake_judge_server import FakeJudgeServer

    root = tmp_path_factory.mktemp("consistency")
    with pytest.MonkeyPatch.context() as patch, FakeJudgeServer() as server:  # vision judge: always "Image 0"
        patch.setenv("OPENAI_API_KEY", "test-key")
        run = evaluate_rows(root / "evals", benchmark_rows(), "judge=openai", f"judge.base_url={server.base_url}",
                            "judge.cache_path=null", "eval.consistency=true", "eval.consistency_repeats=3")
    return root, run


def expected_cells(metrics: dict) -> dict[str, str]:
    def fmt(mean, std, n):
        return f"{mean:.3f} ± {std:.3f} (3 repeats, n={n})"

    cells = {}
    for title, name in (("VSR", "vsr"), ("TallyQA", "tallyqa"), ("GQA", "gqa"), ("MathVista", "mathvista")):
        c = metrics[name]["consistency"]
        assert len(c["repeats"]) == 3 and None not in c["repeats"]
        cells[title] = fmt(c["mean"], c["std"], c["n"])
    subsets = [metrics[name]["consistency"] for name in ("mme_count", "mme_position")]
    per_repeat = [(a + b) / 2 for a, b in zip(subsets[0]["repeats"], subsets[1]["repeats"], strict=True)]
    cells["MME"] = fmt(statistics.fmean(per_repeat), statistics.stdev(per_repeat), sum(s["n"] for s in subsets))
    return cells


def test_report_prints_the_consistency_table_from_the_run(evaluated, tmp_path, capsys):
    root, run = evaluated
    metrics = json.loads((run / "metrics.json").read_text())
    texts = write_report([root / "evals"], out=tmp_path / "report")
    table = [line for line in texts["consistency"].splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    assert header[:7] == ["model", "method", "VSR", "TallyQA", "GQA", "MME", "MathVista"]
    (row,) = ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])
    cells = dict(zip(header, row, strict=True))
    assert {k: cells[k] for k in ("VSR", "TallyQA", "GQA", "MME", "MathVista")} == expected_cells(metrics)
    assert cells["vision judge"] == "openai:gpt-4o" and cells["trained with"] == "untrained"
    assert (tmp_path / "report" / "consistency.md").read_text() == texts["consistency"]
    assert main([str(root / "evals")]) == 0
    assert "## Cross-modal consistency" in capsys.readouterr().out


def test_rules_judge_shows_unavailable_and_no_consistency_means_no_table(tmp_path, grit_cache):
    run = evaluate_rows(tmp_path / "rules", benchmark_rows()[:3], "eval.consistency=true")
    line = write_report([run], None)["consistency"].splitlines()[2]  # the one row
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:7] == ["unavailable", "", "", "", ""]  # VSR evaluated with judge=rules; the others not at all
    assert cells[7] == "unavailable: judge=rules"
    plain = evaluate_rows(tmp_path / "plain", benchmark_rows()[:3])
    assert write_report([plain], None)["consistency"] == ""


def test_a_judged_dataset_without_boxes_says_so_not_a_dash():
    """Evaluated with the vision judge, no eligible sample (aggregate_consistency's n = 0): the cell says why."""
    from grit_exp.evaluation.consistency import aggregate_consistency
    from grit_exp.reporting.consistency_table import NO_BOX, cell, consistency_values

    records = [{"consistency": {"eligible": False, "reason": "no drawable predicted box", "trials": []}}] * 2
    values = consistency_values({"vsr": {"consistency": aggregate_consistency(records, 3)}})
    assert cell(values["vsr"]) == NO_BOX and cell(values["gqa"]) == ""
