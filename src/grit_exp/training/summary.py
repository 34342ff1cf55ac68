"""End-of-run summary: a before/after table of the eval metrics and `reward_curve.png`.

Reads only `metrics.jsonl`, so it works on any run directory (also from a notebook). The figure is
drawn by `grit_exp.reporting.curves.plot_reward_curve`. The table says what training changed: its
columns are the first evaluation (step 0: the warm-start checkpoint, or the model as loaded without a
warm start), the last one, their difference ("change" = last minus step 0, what the GRPO steps did), and
the untrained model (`init/...`, when a warm start ran) for reference, never part of the change. One
sentence under it says the change in plain words, per dataset. A run with one evaluation only (no step-0
evaluation: `trainer.eval_on_start=false`) gets that column alone and a sentence saying there is no change
to report, never a change of that step against itself.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from grit_exp.reporting.curves import plot_reward_curve

log = logging.getLogger("grit_exp.train")

TABLE_METRICS = ("reward", "reward_sampled", "acc", "giou", "giou_paper", "ovd_map", "format", "mean_boxes")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def before_after(records: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[float | None]]]:
    """Columns and rows of the before/after table: step 0 (the first evaluation), the last evaluation
    and, when a warm start ran, the untrained model; one row per eval metric."""
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    if not evals:
        return [], {}
    first, last = evals[0], evals[-1]
    steps = [first] if first["step"] == last["step"] else [first, last]
    init = next((r for r in records if any(k.startswith("init/") for k in r)), None)
    columns = [f"step {r['step']}" for r in steps] + (["untrained"] if init else [])
    table: dict[str, list[float | None]] = {}
    for key in sorted(k for k in last if k.startswith("eval/") and k.count("/") == 2 and k.rsplit("/", 1)[-1] in TABLE_METRICS):
        row = [r.get(key) for r in steps]
        table[key] = row + ([init.get("init/" + key.removeprefix("eval/"))] if init else [])
    return columns, table


def change(values: list[float | None]) -> float | None:
    """What training changed: the last evaluation minus step 0 (never minus the untrained model)."""
    start, end = values[0], values[1]
    return None if start is None or end is None else end - start


def _cell(value: float | None, width: int, sign: bool = False) -> str:
    if value is None:
        return f"  {'-':>{width}}"
    return f"  {value:>+{width}.3f}" if sign else f"  {value:>{width}.3f}"


def format_table(columns: list[str], table: dict[str, list[float | None]]) -> str:
    """The table, then one plain sentence per dataset (e.g. "GRPO, 20 steps: sampled reward +0.13,
    greedy accuracy -0.25"). With one evaluation only (`columns[1]` not a step): that column, no change."""
    width = max([len(k) for k in table] + [6])
    if len(columns) < 2 or not columns[1].startswith("step "):
        head = "".join(f"  {c:>10}" for c in columns)
        lines = [f"{'metric':<{width}}{head}"]
        lines += [f"{key:<{width}}" + "".join(_cell(v, 10) for v in values) for key, values in table.items()]
        return "\n".join([*lines, "", f"One evaluation only ({columns[0]}): no change to report (no step-0 "
                           "evaluation before it: trainer.eval_on_start=false)."])
    head = columns[:2] + [f"change ({columns[1]} - {columns[0]})"] + columns[2:]
    widths = [10, 10, len(head[2]), 10][: len(head)]
    lines = [f"{'metric':<{width}}" + "".join(f"  {c:>{w}}" for c, w in zip(head, widths, strict=True))]
    for key, values in table.items():
        cells = _cell(values[0], 10) + _cell(values[1], 10) + _cell(change(values), widths[2], sign=True)
        cells += "".join(_cell(v, 10) for v in values[2:])
        lines.append(f"{key:<{width}}{cells}")
    lines += ["", *summary_sentences(columns, table)]
    return "\n".join(lines)


def summary_sentences(columns: list[str], table: dict[str, list[float | None]]) -> list[str]:
    """Per dataset, in plain words: the change of the sampled reward (the objective GRPO optimises; the
    greedy reward where no sampled evaluation ran) and of the greedy accuracy over the run's steps."""
    first, last = columns[0].removeprefix("step "), columns[1].removeprefix("step ")
    after_warm_start = ", the warm start" if "untrained" in columns else ""
    sentences = []
    for dataset in dict.fromkeys(key.split("/")[1] for key in table):
        parts = []
        for metric, words in (("reward_sampled", "sampled reward"), ("reward", "greedy reward"), ("acc", "greedy accuracy")):
            if metric == "reward" and f"eval/{dataset}/reward_sampled" in table:
                continue
            values = table.get(f"eval/{dataset}/{metric}")
            delta = change(values) if values else None
            if delta is not None:
                parts.append(f"{words} {delta:+.2f}")
        if parts:
            sentences.append(f"{dataset}, {int(last) - int(first)} training steps: {', '.join(parts)} "
                             f"(step {last} minus step {first}{after_warm_start}).")
    return sentences


def summarize_run(run_dir: Path) -> dict[str, Any]:
    records = read_metrics(run_dir)
    columns, table = before_after(records)
    if table:
        text = format_table(columns, table)
        log.info("before / after (greedy evaluation on the eval split):\n%s", text)
        (run_dir / "before_after.txt").write_text(text + "\n")
    plot_reward_curve(records, run_dir / "reward_curve.png")
    return {"before_after": {"columns": columns, "rows": table}, "run_dir": str(run_dir)}
