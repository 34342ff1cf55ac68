"""reward_curve.png from a metrics.jsonl written here: moving average, greedy and sampled eval series,
the warm-start reference line, integer step ticks, and no series drawn exactly on top of another."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from grit_exp.reporting.curves import moving_average, reward_curve_figure
from grit_exp.training.summary import format_table, read_metrics, summarize_run

DATASETS = ("synth_count", "synth_spatial")


def write_run(run, steps: int = 20, eval_every: int = 10) -> None:
    lines = [{"step": 0, **{f"init/{d}/{m}": 0.0 for d in DATASETS for m in ("reward", "acc", "format")}}]
    for step in range(steps + 1):
        record: dict = {"step": step}
        if step:
            record["train/reward"] = 1.0 + (0.5 if step % 2 else 0.0) + 0.01 * step
        if step % eval_every == 0:
            for i, d in enumerate(DATASETS):
                record[f"eval/{d}/reward"] = 1.5 + 0.01 * step + 0.1 * i
                record[f"eval/{d}/acc"] = 0.2 + 0.005 * step
                record[f"eval/{d}/format"] = 1.0  # identical for both datasets: must stay visible
                record[f"eval/{d}/n"] = 100
            record["eval/synth_count/reward_sampled"] = 1.2 + 0.02 * step
        lines.append(record)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def panel(fig, metric: str):
    return next(ax for ax in fig.axes if ax.get_title().startswith(f"eval {metric}:"))


def test_moving_average_is_trailing():
    assert moving_average([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]


def test_reward_curve_series_reference_lines_and_ticks(tmp_path):
    write_run(tmp_path)
    records = read_metrics(tmp_path)
    fig = reward_curve_figure(records, window=5)
    train = fig.axes[0]
    by_label = {line.get_label(): line for line in train.get_lines()}
    raw = [1.0 + (0.5 if s % 2 else 0.0) + 0.01 * s for s in range(1, 21)]
    assert list(by_label["moving average (5 steps)"].get_ydata()) == pytest.approx(moving_average(raw, 5))
    assert list(by_label["train reward (sampled, per step)"].get_xdata()) == list(range(1, 21))

    reward = panel(fig, "reward")
    labels = [line.get_label() for line in reward.get_lines() if not line.get_label().startswith("_")]
    assert {"synth_count greedy", "synth_count sampled", "synth_spatial greedy"} <= set(labels)
    assert "warm start (step-0 eval), per series" in labels and "untrained model" in labels
    # the warm-start reference: a horizontal line at each series' step-0 value
    flat = {round(line.get_ydata()[0], 6) for line in reward.get_lines()
            if len(set(line.get_ydata())) == 1 and len(line.get_xdata()) == 2}
    assert {1.5, 1.6, 1.2} <= flat

    for metric in ("reward", "acc", "format"):
        ax = panel(fig, metric)
        drawn = [line for line in ax.get_lines() if line.get_label().endswith(("greedy", "sampled"))]
        styles = [(line.get_color(), line.get_marker(), line.get_linestyle()) for line in drawn]
        assert len(set(styles)) == len(styles)
        xs = [tuple(line.get_xdata()) for line in drawn]
        assert len(set(xs)) == len(xs), f"{metric}: two series at the same x positions"
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_visible():
            assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_title()


def test_summarize_run_writes_png_and_table(tmp_path):
    write_run(tmp_path)
    summary = summarize_run(tmp_path)
    with Image.open(tmp_path / "reward_curve.png") as im:
        assert im.format == "PNG" and im.size[0] > 1000
    assert "eval/synth_count/reward_sampled" in summary["before_after"]["rows"]
    assert summary["before_after"]["columns"] == ["step 0", "step 20", "untrained"]


def test_the_change_is_the_last_evaluation_minus_step_0_never_the_untrained_model():
    """The table's change column and its sentence: what the training steps did (step N minus step 0, the
    warm start), with the untrained level beside it for reference only."""
    columns = ["step 0", "step 20", "untrained"]
    table = {"eval/synth_count/acc": [0.608, 0.358, 0.0], "eval/synth_count/reward": [2.339, 2.026, 0.096],
             "eval/synth_count/reward_sampled": [1.916, 2.048, None]}
    text = format_table(columns, table)
    acc_row = next(line for line in text.splitlines() if line.startswith("eval/synth_count/acc"))
    assert acc_row.split()[1:] == ["0.608", "0.358", "-0.250", "0.000"]
    assert "change (step 20 - step 0)" in text.splitlines()[0]
    assert text.splitlines()[-1] == ("synth_count, 20 training steps: sampled reward +0.13, greedy accuracy -0.25 "
                                     "(step 20 minus step 0, the warm start).")
    without_warm_start = format_table(["step 0", "step 4"], {"eval/x/acc": [0.5, 0.6]})
    assert without_warm_start.splitlines()[-1] == "x, 4 training steps: greedy accuracy +0.10 (step 4 minus step 0)."


def test_one_evaluation_only_reports_no_change_against_itself(tmp_path):
    """trainer.eval_on_start=false and one evaluation: that column alone, no 'change' of step N minus step N."""
    record = {"step": 120, "eval/synth_count/acc": 0.25, "eval/synth_count/reward": 0.6}
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/loss": 1.0}) + "\n" + json.dumps(record) + "\n")
    summary = summarize_run(tmp_path)
    assert summary["before_after"]["columns"] == ["step 120"]
    text = (tmp_path / "before_after.txt").read_text()
    assert "change" not in text.splitlines()[0] and "training steps" not in text
    assert text.splitlines()[1].split() == ["eval/synth_count/acc", "0.250"]
    assert "One evaluation only (step 120): no change to report" in text
