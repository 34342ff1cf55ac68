"""End-of-run summary: a before/after table of the eval metrics and `reward_curve.png`.

Reads only `metrics.jsonl`, so it works on any run directory (also from a notebook). The figure is
drawn by `grit_exp.reporting.curves.plot_reward_curve`; the table's columns are the untrained model
(`init/...`, when a warm start ran), the first evaluation (step 0: the warm-start checkpoint) and the
last one.
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
    """Columns and rows of the before/after table: the untrained model (when a warm start ran), the
    first and the last evaluation; one row per eval metric."""
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    if not evals:
        return [], {}
    first, last = evals[0], evals[-1]
    init = next((r for r in records if any(k.startswith("init/") for k in r)), None)
    columns = (["untrained"] if init else []) + [f"step {first['step']}", f"step {last['step']}"]
    table: dict[str, list[float | None]] = {}
    for key in sorted(k for k in last if k.startswith("eval/") and k.count("/") == 2 and k.rsplit("/", 1)[-1] in TABLE_METRICS):
        row = [init.get("init/" + key.removeprefix("eval/"))] if init else []
        table[key] = row + [first.get(key), last.get(key)]
    return columns, table


def format_table(columns: list[str], table: dict[str, list[float | None]]) -> str:
    width = max([len(k) for k in table] + [6])
    lines = [f"{'metric':<{width}}" + "".join(f"  {c:>10}" for c in columns) + f"  {'change':>8}"]
    for key, values in table.items():
        cells = "".join(f"  {'-':>10}" if v is None else f"  {v:>10.3f}" for v in values)
        known = [v for v in values if v is not None]
        change = f"  {known[-1] - known[0]:>+8.3f}" if len(known) >= 2 else ""
        lines.append(f"{key:<{width}}{cells}{change}")
    return "\n".join(lines)


def summarize_run(run_dir: Path) -> dict[str, Any]:
    records = read_metrics(run_dir)
    columns, table = before_after(records)
    if table:
        text = format_table(columns, table)
        log.info("before / after (greedy evaluation on the eval split):\n%s", text)
        (run_dir / "before_after.txt").write_text(text + "\n")
    plot_reward_curve(records, run_dir / "reward_curve.png")
    return {"before_after": {"columns": columns, "rows": table}, "run_dir": str(run_dir)}
