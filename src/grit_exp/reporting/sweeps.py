"""Sweeps in the report: each sweep's summary, and the paper's ablations next to a sweep's results.

`render_sweeps` gives, per sweep directory, its sweep_summary table (grit_exp.cluster.sweep.summary) and,
for a Table 3 sweep (counting data x r_count, InternVL3-2B), the comparison with the paper. A sweep
launched from `experiment=ablation_internvl3_2b_counting` has one job per arm (dataset grit20 or
grit20_vsr, reward.weights.count 1 or 0). `table3_rows` places each completed job of such a sweep
summary in its arm and reads its final evaluation: the `eval/<dataset>/<metric>` keys that evaluation
writes to metrics.jsonl, `<dataset>` being the rows' `dataset` field (vsr, tallyqa, gqa, mme_count, ...,
ovd_position), turned into Table 1's columns exactly as Table 1 does (`table1.column_values`: the same
dataset spellings, MME = the unweighted mean of its subsets, ACC x100, GIoU in the authors'
convention `giou_paper`). In-domain = the benchmarks of the training data's sources (VSR, TallyQA: the
paper trains on 10 VSR + 10 TallyQA rows); out-of-domain = the other Table 1 benchmarks (GQA,
MathVista, MME, OVDEval); each side is the mean of its columns that have the number (ACC: VSR, TallyQA
| GQA, MathVista, MME; GIoU: VSR, TallyQA | GQA, OVDEval). The paper does not list the sets behind its
two averages; this split is the toolkit's reading and is printed with the table. The data-scaling
study (`ablation_qwen2_5_vl_3b_data_scaling`) is a figure in the paper: no numbers to compare with.
Left out: finding sweeps (collect.py), writing summaries (grit_exp.cluster.sweep) and Table 1 (table1.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TABLE3_EXPERIMENT = "ablation_internvl3_2b_counting"
# Table 1 column keys (reporting/paper.py COLUMNS) on each side of the split
IN_DOMAIN = ("vsr", "tallyqa")
OUT_OF_DOMAIN = ("gqa", "mathvista", "mme", "ovd")
# (counting data, r_count on) -> the paper's numbers: ACC x100, GIoU
PAPER_TABLE3: dict[tuple[bool, bool], dict[str, float]] = {
    (True, True): {"acc_in": 51.8, "acc_out": 64.4, "giou_in": 0.387, "giou_out": 0.437},
    (False, False): {"acc_in": 53.8, "acc_out": 60.0, "giou_in": 0.349, "giou_out": 0.378},
}
COLUMNS = ("acc_in", "acc_out", "giou_in", "giou_out")
SPLIT_NOTE = ("in-domain = mean over VSR, TallyQA (the training data's sources); out-of-domain = mean over GQA, "
              "MathVista, MME (ACC) and GQA, OVDEval (GIoU); each benchmark as in Table 1 (ACC x100, MME = mean of "
              "its subsets, GIoU = giou_paper); the toolkit's reading: the paper does not list the sets")


def _override(job: dict[str, Any], key: str) -> str | None:
    values = [o.split("=", 1)[1] for o in job.get("overrides", []) if o.split("=", 1)[0].lstrip("+") == key]
    return values[-1] if values else None


def arm_of(job: dict[str, Any]) -> tuple[bool, bool] | None:
    """(counting data, r_count on) of a Table 3 sweep job, from its overrides; None when they do not say."""
    dataset, count = _override(job, "dataset"), _override(job, "reward.weights.count")
    if dataset not in ("grit20", "grit20_vsr") or count is None:
        return None
    return dataset == "grit20", float(count) != 0.0


def _side_mean(values: dict[str, float | None], columns: Sequence[str], metric: str) -> float | None:
    known = [v for c in columns if (v := values.get(f"{c}_{metric}")) is not None]
    return sum(known) / len(known) if known else None


def table3_numbers(metrics: dict[str, Any]) -> dict[str, float | None]:
    """acc_in / acc_out (x100) / giou_in / giou_out of one job's final `eval/<dataset>/<metric>` values."""
    from grit_exp.reporting.collect import quick_eval_datasets
    from grit_exp.reporting.table1 import column_values

    values, _ = column_values(quick_eval_datasets(metrics), giou="paper")
    return {"acc_in": _side_mean(values, IN_DOMAIN, "acc"), "acc_out": _side_mean(values, OUT_OF_DOMAIN, "acc"),
            "giou_in": _side_mean(values, IN_DOMAIN, "giou"), "giou_out": _side_mean(values, OUT_OF_DOMAIN, "giou")}


def side_sizes(metrics: dict[str, Any]) -> dict[str, int]:
    """n_in / n_out: the evaluated rows behind each side (the `eval/<dataset>/n` of its benchmarks' datasets)."""
    from grit_exp.reporting.collect import quick_eval_datasets
    from grit_exp.reporting.paper import COLUMNS as TABLE1_COLUMNS
    from grit_exp.reporting.table1 import _column_entry

    datasets = quick_eval_datasets(metrics)
    sizes: dict[str, int] = {}
    for col in TABLE1_COLUMNS:
        if col.subset_prefix:
            sizes[col.key] = sum(int(m.get("n") or 0) for name, m in datasets.items() if name.startswith(col.subset_prefix))
        else:
            _, entry = _column_entry(col, datasets)
            sizes[col.key] = int((entry or {}).get("n") or 0)
    return {"n_in": sum(sizes.get(c, 0) for c in IN_DOMAIN), "n_out": sum(sizes.get(c, 0) for c in OUT_OF_DOMAIN)}


def provenance(run_dir: str | None) -> dict[str, str]:
    """How a job's weights were trained and how its evaluation was scored, from what the run saved (its
    .hydra/config.yaml, and metrics.json `_meta` for an evaluation run); "unrecorded" where it saved nothing."""
    from grit_exp.reporting.collect import CONFIG_FILE, _load_yaml, scoring_label
    from grit_exp.reporting.methods import training_config, training_label

    run = Path(run_dir) if run_dir else None
    if run is None or not (run / CONFIG_FILE).is_file():
        return {"trained": "unrecorded", "scored": "unrecorded"}
    cfg = _load_yaml(run / CONFIG_FILE)
    kind = "train_eval" if "algorithm" in cfg else "evaluate"
    meta_file = run / "metrics.json"
    meta = (json.loads(meta_file.read_text()).get("_meta") or {}) if kind == "evaluate" and meta_file.is_file() else None
    return {"trained": training_label(training_config(cfg, kind, None, _load_yaml)),
            "scored": scoring_label(meta) if meta is not None else scoring_label({}, cfg)}


def table3_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per job of a Table 3 sweep: its arm, our four numbers with the rows behind them, how it was
    trained and scored, and the paper's numbers (None where not reported)."""
    rows = []
    for job in summary.get("jobs", []):
        arm = arm_of(job)
        if arm is None:
            continue
        metrics = job.get("metrics") or {}
        rows.append({"num": job["num"], "status": job.get("status"), "counting_data": arm[0], "r_count": arm[1],
                     "ours": table3_numbers(metrics), "n": side_sizes(metrics), **provenance(job.get("run_dir")),
                     "paper": PAPER_TABLE3.get(arm)})
    return rows


def render_table3(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per job, ours / paper for each of the four numbers."""
    def cell(ours: float | None, paper: float | None) -> str:
        mine = "-" if ours is None else f"{ours:.3g}"
        return f"{mine} / {paper:g}" if paper is not None else mine

    lines = ["| job | counting data | r_count | status | " + " | ".join(f"{c} (ours / paper)" for c in COLUMNS)
             + " | n (in / out) | trained with | scored with |",
             "|---|---|---|---|" + "---|" * len(COLUMNS) + "---|---|---|"]
    for r in rows:
        paper = r["paper"] or {}
        cells = [cell(r["ours"][c], paper.get(c)) for c in COLUMNS]
        lines.append(f"| #{r['num']} | {'yes' if r['counting_data'] else 'no (20 VSR)'} | {'on' if r['r_count'] else 'off'} "
                     f"| {r['status']} | " + " | ".join(cells)
                     + f" | {r['n']['n_in']} / {r['n']['n_out']} | {r['trained']} | {r['scored']} |")
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
