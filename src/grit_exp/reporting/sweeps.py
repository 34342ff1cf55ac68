"""Sweeps in the report: each sweep's summary, and the paper's ablations next to a sweep's results.

`render_sweeps` gives, per sweep directory, its sweep_summary table (grit_exp.cluster.sweep.summary) and,
for a Table 3 sweep (counting data x r_count, InternVL3-2B), the comparison with the paper. A sweep launched from `experiment=ablation_internvl3_2b_counting` has one job per arm (dataset
grit20 or grit20_vsr, reward.weights.count 1 or 0). `table3_rows` places each completed job of such a
sweep summary in its arm and averages its final evaluation into in-domain (the training sets' own
benchmarks: VSR, TallyQA) and out-of-domain (GQA, MathVista, MME, OVDEval) ACC and GIoU, next to
the paper's numbers where the paper reports the arm. The paper does not list which sets it averaged;
this split is the toolkit's reading and is printed with the table. The data-scaling study
(`ablation_qwen2_5_vl_3b_data_scaling`) is a figure in the paper: no numbers to compare with.
Left out: finding sweeps (collect.py), writing summaries (grit_exp.cluster.sweep) and Table 1 (table1.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

TABLE3_EXPERIMENT = "ablation_internvl3_2b_counting"
IN_DOMAIN = ("vsr_val", "tallyqa_val")
OUT_OF_DOMAIN = ("gqa_val", "mathvista_mini_val", "mme_val", "ovd_position_val")
# (counting data, r_count on) -> the paper's numbers: ACC x100, GIoU
PAPER_TABLE3: dict[tuple[bool, bool], dict[str, float]] = {
    (True, True): {"acc_in": 51.8, "acc_out": 64.4, "giou_in": 0.387, "giou_out": 0.437},
    (False, False): {"acc_in": 53.8, "acc_out": 60.0, "giou_in": 0.349, "giou_out": 0.378},
}
COLUMNS = ("acc_in", "acc_out", "giou_in", "giou_out")
SPLIT_NOTE = (f"in-domain = mean over {', '.join(IN_DOMAIN)}; out-of-domain = mean over {', '.join(OUT_OF_DOMAIN)} "
              "(ACC x100; GIoU where the set has boxes; the toolkit's reading, the paper does not list the sets)")


def _override(job: dict[str, Any], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in job.get("overrides", []) if o.split("=", 1)[0].lstrip("+") == key]
    return values[-1] if values else None


def arm_of(job: dict[str, Any]) -> tuple[bool, bool] | None:
    """(counting data, r_count on) of a Table 3 sweep job, from its overrides; None when they do not say."""
    dataset, count = _override(job, "dataset"), _override(job, "reward.weights.count")
    if dataset not in ("grit20", "grit20_vsr") or count is None:
        return None
    return dataset == "grit20", float(count) != 0.0


def _mean(metrics: dict[str, Any], datasets: Sequence[str], metric: str, scale: float) -> float | None:
    values = [metrics.get(f"eval/{d}/{metric}") for d in datasets]
    known = [float(v) * scale for v in values if isinstance(v, int | float)]
    return sum(known) / len(known) if known else None


def table3_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per job of a Table 3 sweep: its arm, our four numbers, the paper's (None where not reported)."""
    rows = []
    for job in summary.get("jobs", []):
        arm = arm_of(job)
        if arm is None:
            continue
        metrics = job.get("metrics") or {}
        ours = {
            "acc_in": _mean(metrics, IN_DOMAIN, "acc", 100.0), "acc_out": _mean(metrics, OUT_OF_DOMAIN, "acc", 100.0),
            "giou_in": _mean(metrics, IN_DOMAIN, "giou_paper", 1.0) if any("giou_paper" in k for k in metrics)
            else _mean(metrics, IN_DOMAIN, "giou", 1.0),
            "giou_out": _mean(metrics, OUT_OF_DOMAIN, "giou_paper", 1.0) if any("giou_paper" in k for k in metrics)
            else _mean(metrics, OUT_OF_DOMAIN, "giou", 1.0),
        }
        rows.append({"num": job["num"], "status": job.get("status"), "counting_data": arm[0], "r_count": arm[1],
                     "ours": ours, "paper": PAPER_TABLE3.get(arm)})
    return rows


def render_table3(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per job, ours / paper for each of the four numbers."""
    def cell(ours: float | None, paper: float | None) -> str:
        mine = "-" if ours is None else f"{ours:.3g}"
        return f"{mine} / {paper:g}" if paper is not None else mine

    lines = ["| job | counting data | r_count | status | " + " | ".join(f"{c} (ours / paper)" for c in COLUMNS) + " |",
             "|---|---|---|---|" + "---|" * len(COLUMNS)]
    for r in rows:
        paper = r["paper"] or {}
        cells = [cell(r["ours"][c], paper.get(c)) for c in COLUMNS]
        lines.append(f"| #{r['num']} | {'yes' if r['counting_data'] else 'no (20 VSR)'} | {'on' if r['r_count'] else 'off'} "
                     f"| {r['status']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{SPLIT_NOTE}\n"


def render_sweeps(sweep_dirs: Sequence[Path], paper: bool = True) -> str:
    """Markdown for every sweep: its summary table, then Table 3 against the paper when the sweep has its arms."""
    from grit_exp.cluster.sweep.summary import read_summary, render_markdown

    parts = []
    for sweep_dir in sweep_dirs:
        summary = read_summary(sweep_dir)
        parts.append(render_markdown(summary).replace("# Sweep ", "### Sweep ", 1))
        rows = table3_rows(summary)
        if rows:
            if not paper:
                rows = [{**r, "paper": None} for r in rows]
            parts.append("#### The paper's Table 3 (InternVL3-2B ablation), ours / paper\n\n" + render_table3(rows))
    return "\n".join(parts)
