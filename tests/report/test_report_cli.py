"""`python -m grit_exp.report`: files written per --format, curves, exit status and messages."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.report import main
from grit_exp.reporting import plot_overlay, plot_run_curves, read_curve_records
from grit_exp.reporting.curves import series
from tests.helpers.run_dirs import make_evaluate_run, make_training_run, write_metrics

ROOT = Path(__file__).resolve().parents[2]


def test_cli_writes_every_format_and_curves(tmp_path, capsys):
    make_evaluate_run(tmp_path / "runs" / "eval_a", table1={"model": "qwen2_5_vl_3b", "method": "grit"})
    make_training_run(tmp_path / "runs" / "2025-01-01" / "train_a")
    make_training_run(tmp_path / "runs" / "2025-01-01" / "train_b")
    out = tmp_path / "report"
    assert main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## Table 1 layout" in printed and "| Qwen2.5-VL-3B | GRIT | paper | 72.9 / 0.325" in printed
    assert "## All datasets" in printed and "mme_existence" in printed
    assert {p.name for p in out.iterdir()} >= {"table1.md", "table1.csv", "table1.tex", "all_datasets.md",
                                               "curves_overlay.png"}
    pngs = sorted(out.glob("curves_*.png"))
    assert len(pngs) == 3  # two runs with metrics.jsonl + the overlay; the evaluate run has no curves
    for png in pngs:
        with Image.open(png) as im:
            assert im.format == "PNG" and im.size[0] > 300
    rows = list(csv.DictReader((out / "table1.csv").open()))
    assert [r["kind"] for r in rows].count("train_eval") == 2


def test_cli_format_and_no_paper(tmp_path, capsys):
    make_evaluate_run(tmp_path / "run")
    out = tmp_path / "report"
    assert main([str(tmp_path / "run"), "--out", str(out), "--format", "csv", "--no-paper"]) == 0
    assert sorted(p.name for p in out.glob("table1.*")) == ["table1.csv"]
    assert "| paper |" not in capsys.readouterr().out


def test_cli_rejects_unknown_format(tmp_path, capsys):
    make_evaluate_run(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "run"), "--format", "md,xlsx"])
    assert exit_.value.code == 2
    assert "unknown ['xlsx']; choose from md,csv,tex" in capsys.readouterr().err


def test_cli_missing_config_exits_2_naming_the_dir(tmp_path):
    orphan = tmp_path / "orphan"
    write_metrics(orphan, {"vsr": {"n": 1, "acc": 1.0}})
    out = subprocess.run([sys.executable, "-m", "grit_exp.report", str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert f"{orphan}: no saved config" in out.stderr
    assert out.stdout == ""


def test_curves_read_series_and_skip_runs_without_records(tmp_path):
    run = make_training_run(tmp_path / "train", steps=(3, 6))
    records = read_curve_records(run)
    steps, values = series(records, "eval/vsr/acc")
    assert steps == [0, 3, 6] and values == pytest.approx([0.0, 0.05, 0.1])
    assert series(records, "train/reward")[0] == [1, 2, 3, 4, 5, 6]
    assert plot_run_curves(run, tmp_path / "one.png") == tmp_path / "one.png"
    assert (tmp_path / "one.png").stat().st_size > 1000
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plot_run_curves(empty, tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()
    assert plot_overlay([empty], tmp_path / "overlay.png") is None
    (run / "metrics.jsonl").write_text('{"step": 1}\nnot json\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2: not valid JSON"):
        read_curve_records(run)


def test_pictured_samples_pair_pictures_with_records(tmp_path):
    from grit_exp.reporting import pictured_samples

    run = make_evaluate_run(tmp_path / "run")
    samples = pictured_samples(run, limit=2)
    assert [s.picture.name for s in samples] == ["sample_000000.png", "sample_000001.png"]
    assert [s.record["index"] for s in samples] == [0, 1]
    assert "Q: question 1?" in samples[1].caption() and "acc=1.000" in samples[1].caption()
    for picture in (run / "images").glob("*.png"):
        picture.unlink()
    assert [s.picture for s in pictured_samples(run)] == [None, None, None]  # records alone


def test_newest_run_dir_picks_the_latest_run_with_results(tmp_path):
    import os

    from grit_exp.reporting import newest_run_dir

    old = make_training_run(tmp_path / "outputs" / "2025-01-01" / "10-00-00")
    new = make_evaluate_run(tmp_path / "outputs" / "2025-01-02" / "09-00-00")
    (tmp_path / "outputs" / "infer" / "2025-01-03").mkdir(parents=True)  # inference dirs hold no results
    for path in old.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    assert newest_run_dir(tmp_path / "outputs") == new
    assert newest_run_dir(tmp_path / "missing") is None
