"""Table 3 (InternVL ablation) from the metric keys that real evaluation runs write.

Two replay evaluations over every Table 1 benchmark (GRIT_data's `dataset` spellings) write
metrics.jsonl; the sweep summary reads each job's final metrics from it (`final_metrics`, the
sweeper's own code), and the report must fill every cell of Table 3 from those keys. The expected
numbers are formed here from each run's metrics.json by the paper's split (in-domain: VSR, TallyQA).
"""

from __future__ import annotations

import json

import pytest

from grit_exp.cluster.sweep.summary import SweepJob, final_metrics, read_summary, write_summary
from grit_exp.report import write_report
from grit_exp.reporting.sweeps import table3_rows
from tests.helpers.eval_runs import benchmark_rows, evaluate_rows

ARMS = [("grit20", "1.0"), ("grit20", "0.0"), ("grit20_vsr", "1.0"), ("grit20_vsr", "0.0")]


def mean(values):
    return sum(values) / len(values)


def expected(metrics: dict) -> dict:
    """The four numbers from a metrics.json, worked out here: MME = mean of its subsets, ACC x100, giou_paper."""
    mme = mean([metrics["mme_count"]["acc"], metrics["mme_position"]["acc"]])
    return {
        "acc_in": 100 * mean([metrics["vsr"]["acc"], metrics["tallyqa"]["acc"]]),
        "acc_out": 100 * mean([metrics["gqa"]["acc"], metrics["mathvista"]["acc"], mme]),
        "giou_in": mean([metrics["vsr"]["giou_paper"], metrics["tallyqa"]["giou_paper"]]),
        "giou_out": mean([metrics["gqa"]["giou_paper"], metrics["ovd_position"]["giou_paper"]]),
    }


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, grit_cache):
    root = tmp_path_factory.mktemp("table3")
    runs = [evaluate_rows(root / f"eval{v}", benchmark_rows(variant=v)) for v in (0, 1)]
    jobs = []
    for num, (dataset, count) in enumerate(ARMS):
        run = runs[0] if num != 3 else runs[1]
        step, metrics = final_metrics(run)  # what the sweeper records from the job's metrics.jsonl
        jobs.append(SweepJob(num=num, overrides=[f"dataset={dataset}", f"reward.weights.count={count}"],
                             status="completed", run_dir=str(run), final_step=step, metrics=metrics))
    sweep_dir = root / "sweep"
    sweep_dir.mkdir()
    write_summary(sweep_dir, jobs, launcher="basic")
    return sweep_dir, runs


def test_every_cell_is_filled_from_the_keys_a_run_wrote(sweep):
    sweep_dir, runs = sweep
    rows = table3_rows(read_summary(sweep_dir))
    assert [(r["counting_data"], r["r_count"]) for r in rows] == [(True, True), (True, False), (False, True), (False, False)]
    for row in rows:
        run = runs[1] if row["num"] == 3 else runs[0]
        want = expected(json.loads((run / "metrics.json").read_text()))
        assert row["ours"] == {k: pytest.approx(v, rel=1e-12) for k, v in want.items()}
    assert rows[0]["ours"] != rows[3]["ours"], "the two arms' runs differ"
    for row in rows:  # the rows behind each side, and how the run was trained and scored, from what it saved
        run = runs[1] if row["num"] == 3 else runs[0]
        metrics = json.loads((run / "metrics.json").read_text())
        assert row["n"] == {"n_in": metrics["vsr"]["n"] + metrics["tallyqa"]["n"],
                            "n_out": sum(metrics[d]["n"] for d in ("gqa", "mathvista", "mme_count", "mme_position",
                                                                    "ovd_position"))}
        assert row["n"]["n_in"] > 0 and row["n"]["n_out"] > 0
        assert row["trained"] == "untrained"  # these jobs are evaluations of a base model
        assert row["scored"] == f"judge={metrics['_meta']['judge_preset']}, untagged={metrics['_meta']['untagged_answer']}"
    assert rows[0]["paper"]["acc_in"] == 51.8 and rows[3]["paper"]["giou_out"] == 0.378 and rows[1]["paper"] is None


def test_the_keys_read_are_the_ones_evaluation_writes(sweep):
    _, runs = sweep
    curve = json.loads((runs[0] / "metrics.jsonl").read_text().splitlines()[-1])
    datasets = {key.split("/")[1] for key in curve if key.startswith("eval/")}
    assert datasets == {"vsr", "tallyqa", "gqa", "mathvista", "mme_count", "mme_position", "ovd_position"}
    assert "eval/vsr/acc" in curve and "eval/ovd_position/giou_paper" in curve and "eval/vsr_val/acc" not in curve


def test_report_prints_table3_next_to_the_paper(sweep, tmp_path):
    sweep_dir, runs = sweep
    texts = write_report([sweep_dir], out=tmp_path / "report")
    ours = expected(json.loads((runs[0] / "metrics.json").read_text()))
    cells = " | ".join(f"{ours[k]:.3g} / {p:g}" for k, p in zip(("acc_in", "acc_out", "giou_in", "giou_out"),
                                                                  (51.8, 64.4, 0.387, 0.437), strict=True))
    assert f"| #0 | yes | on | completed | {cells} | " in texts["sweeps"]
    assert "| n (in / out) | trained with | scored with |" in texts["sweeps"]
    table = texts["sweeps"].split("Table 3")[1]
    assert "| - " not in table and " - /" not in table, "no blank cell"
    assert (tmp_path / "report" / "sweeps.md").read_text() == texts["sweeps"]
