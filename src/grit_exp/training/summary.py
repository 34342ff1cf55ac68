"""End-of-run summary: a before/after table of the eval metrics and a reward-curve PNG.

Reads only `metrics.jsonl`, so it works on any run directory (also from a notebook).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("grit_exp.train")


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def before_after(records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    if not evals:
        return {}
    first, last = evals[0], evals[-1]
    keys = sorted(k for k in first if k.startswith("eval/") and k in last)
    return {k: (first[k], last[k]) for k in keys if first[k] is not None and last[k] is not None}


def format_table(table: dict[str, tuple[float, float]], first_step: int, last_step: int) -> str:
    width = max([len(k) for k in table] + [6])
    lines = [f"{'metric':<{width}}  {'step ' + str(first_step):>10}  {'step ' + str(last_step):>10}  {'change':>8}"]
    for key, (a, b) in table.items():
        lines.append(f"{key:<{width}}  {a:>10.3f}  {b:>10.3f}  {b - a:>+8.3f}")
    return "\n".join(lines)


def plot_reward_curve(records: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [(r["step"], r["train/reward"]) for r in records if r.get("train/reward") is not None]
    if train:
        ax.plot(*zip(*train), label="train reward (sampled)", alpha=0.6)
    eval_keys = sorted({k for r in records for k in r if k.startswith("eval/") and k.endswith("/reward")})
    for key in eval_keys:
        pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        ax.plot(*zip(*pts), marker="o", label=f"{key} (greedy)")
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def summarize_run(run_dir: Path) -> dict[str, Any]:
    records = read_metrics(run_dir)
    table = before_after(records)
    evals = [r["step"] for r in records if any(k.startswith("eval/") for k in r)]
    if table:
        text = format_table(table, evals[0], evals[-1])
        log.info("before / after (greedy evaluation on the eval split):\n%s", text)
        (run_dir / "before_after.txt").write_text(text + "\n")
    plot_reward_curve(records, run_dir / "reward_curve.png")
    return {"before_after": table, "run_dir": str(run_dir)}
