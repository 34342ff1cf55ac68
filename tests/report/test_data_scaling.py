"""The data-scaling table and figure, from a sweep laid out as the sweeper writes it (sweep_summary.json + run dirs
whose metrics.jsonl carry the `eval/<dataset>/<metric>` keys that evaluation writes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from grit_exp.cluster.sweep.summary import SweepJob, write_summary
from grit_exp.reporting.data_scaling import scaling_points

ROOT = Path(__file__).resolve().parents[2]


def make_sweep(tmp_path: Path, key: str = "acc") -> Path:
    """Three jobs (20 / 500 / 7000 samples); in-domain ACC 0.5 -> 0.7 -> 0.75, out-of-domain 0.6 -> 0.62 -> 0.63."""
    sweep = tmp_path / "multirun"
    jobs = []
    for num, (samples, acc_in, acc_out) in enumerate([(20, 0.5, 0.6), (500, 0.7, 0.62), (7000, 0.75, 0.63)]):
        run = sweep / str(num)
        run.mkdir(parents=True)
        final = {"step": 150, f"eval/vsr/{key}": acc_in, f"eval/tallyqa/{key}": acc_in, f"eval/gqa/{key}": acc_out,
                 f"eval/mathvista/{key}": acc_out, f"eval/mme_count/{key}": acc_out, "eval/vsr/giou_paper": 0.3}
        (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/reward": 1.0}) + "\n"
                                           + json.dumps({"step": 50, f"eval/vsr/{key}": 0.1}) + "\n" + json.dumps(final) + "\n")
        jobs.append(SweepJob(num=num, overrides=[f"dataset.num_samples={samples}"], status="completed", run_dir=str(run)))
    write_summary(sweep, jobs, launcher="basic")
    return sweep


def test_points_come_from_each_runs_last_evaluation(tmp_path):
    points = scaling_points(json.loads((make_sweep(tmp_path) / "sweep_summary.json").read_text()))
    assert [p["samples"] for p in points] == [20, 500, 7000]
    assert [round(p["acc_in"], 6) for p in points] == [50.0, 70.0, 75.0]  # ACC x100, the last eval (not step 50's)
    assert [round(p["acc_out"], 6) for p in points] == [60.0, 62.0, 63.0]
    assert points[0]["giou_in"] == 0.3 and points[0]["giou_out"] is None


def test_made_up_keys_fill_nothing(tmp_path):
    points = scaling_points(json.loads((make_sweep(tmp_path, key="accuracy") / "sweep_summary.json").read_text()))
    assert all(p["acc_in"] is None and p["acc_out"] is None for p in points)


def test_cli_writes_the_table_and_the_figure(tmp_path):
    sweep = make_sweep(tmp_path)
    done = subprocess.run([sys.executable, "-m", "grit_exp.reporting.data_scaling", str(sweep), "--out", str(tmp_path / "r")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| 500 | #1 | completed | 70 | 62 |" in done.stdout
    with Image.open(tmp_path / "r" / "data_scaling.png") as image:
        assert image.width > 300
    assert "| 7000 | #2 | completed | 75 | 63 |" in (tmp_path / "r" / "data_scaling.md").read_text()
    other = tmp_path / "other"
    other.mkdir()
    write_summary(other, [SweepJob(num=0, overrides=["dataset=grit20"], status="completed", run_dir="x")], "basic")
    done = subprocess.run([sys.executable, "-m", "grit_exp.reporting.data_scaling", str(other)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "dataset.num_samples" in done.stderr


def test_the_report_writes_them_for_a_scaling_sweep(tmp_path):
    sweep = make_sweep(tmp_path)
    done = subprocess.run([sys.executable, "-m", "grit_exp.report", str(sweep), "--out", str(tmp_path / "report")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "report" / "data_scaling.png").is_file()
    assert "| 20 | #0 | completed | 50 | 60 |" in (tmp_path / "report" / "data_scaling.md").read_text()
