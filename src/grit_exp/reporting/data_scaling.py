"""The data-scaling study (20 / 500 / 7000 training samples): a table and a figure from the sweep's runs.

A sweep launched from `experiment=ablation_qwen2_5_vl_3b_data_scaling` has one job per `dataset.num_samples`.
For each completed job this reads the run's last evaluation in its metrics.jsonl (the
`eval/<dataset>/<metric>` keys that evaluation writes, `<dataset>` being the rows' `dataset` field: vsr,
tallyqa, gqa, mathvista, mme_count, ..., ovd_position) and forms, as Table 3 does
(`grit_exp.reporting.sweeps.table3_numbers`: Table 1's columns, ACC x100, MME = mean of its subsets),
ACC and GIoU in-domain (VSR, TallyQA: the training data's sources) and out-of-domain (GQA, MathVista, MME;
GIoU: GQA, OVDEval). `data_scaling.png`: ACC against the number of training samples (log scale), one line
in-domain, one out-of-domain. [paper] a figure only ("ACC rises with diminishing returns, more in-domain
than out-of-domain"): there are no numbers to put beside ours.

    python -m grit_exp.reporting.data_scaling <sweep dir> [--out DIR]

(`python -m grit_exp.report <sweep dir> --out DIR` writes the same files for every such sweep.)
Left out: finding sweeps (reporting/collect.py), the sweep summary itself (cluster/sweep/summary.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAMPLES_KEY = "dataset.num_samples"
FIGURE, TABLE = "data_scaling.png", "data_scaling.md"


def _num_samples(job: dict[str, Any]) -> int | None:
    values = [o.split("=", 1)[1] for o in job.get("overrides", []) if o.split("=", 1)[0].lstrip("+") == SAMPLES_KEY]
    try:
        return int(values[-1]) if values and values[-1] not in ("null", "None") else None
    except ValueError:
        return None


def job_metrics(job: dict[str, Any]) -> dict[str, Any]:
    """The job's final `eval/...` values: re-read from its run's metrics.jsonl when the run is there."""
    from grit_exp.cluster.sweep.summary import final_metrics

    run_dir = Path(str(job.get("run_dir") or ""))
    if job.get("run_dir") and (run_dir / "metrics.jsonl").is_file():
        return final_metrics(run_dir)[1]
    return dict(job.get("metrics") or {})


def scaling_points(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per job that set dataset.num_samples: samples, status, acc_in / acc_out / giou_in / giou_out."""
    from grit_exp.reporting.sweeps import table3_numbers

    points = []
    for job in summary.get("jobs", []):
        samples = _num_samples(job)
        if samples is None:
            continue
        points.append({"num": job.get("num"), "samples": samples, "status": job.get("status"),
                       **table3_numbers(job_metrics(job))})
    return sorted(points, key=lambda p: (p["samples"], p["num"] if p["num"] is not None else -1))


def render_markdown(points: Sequence[dict[str, Any]]) -> str:
    from grit_exp.reporting.sweeps import SPLIT_NOTE

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3g}"

    lines = ["| training samples | job | status | ACC in-domain | ACC out-of-domain | GIoU in-domain | GIoU out-of-domain |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {p['samples']} | #{p['num']} | {p['status']} | {cell(p['acc_in'])} | {cell(p['acc_out'])} | "
              f"{cell(p['giou_in'])} | {cell(p['giou_out'])} |" for p in points]
    return ("\n".join(lines) + f"\n\n{SPLIT_NOTE}\n\n[paper] a figure only: ACC rises with diminishing returns, more "
            "in-domain than out-of-domain (no numbers to compare with).\n")


def plot(points: Sequence[dict[str, Any]], path: Path) -> Path:
    """ACC vs training samples (log x): in-domain and out-of-domain lines; jobs without a number are left out."""
    from grit_exp.reporting.curves import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for key, label, marker in (("acc_in", "in-domain (VSR, TallyQA)", "o"),
                               ("acc_out", "out-of-domain (GQA, MathVista, MME)", "s")):
        pts = [(p["samples"], p[key]) for p in points if p[key] is not None]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_xticks(sorted({p["samples"] for p in points}), [str(s) for s in sorted({p["samples"] for p in points})])
    ax.set_xlabel("training samples")
    ax.set_ylabel("ACC (x100)")
    ax.set_title("Data scaling")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no evaluation in these runs", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_data_scaling(sweep_dirs: Sequence[Path], out: Path) -> list[Path]:
    """For each sweep that varied dataset.num_samples: <out>/data_scaling.{md,png} (suffixed by the sweep's
    position when there are several). Returns the written files."""
    from grit_exp.cluster.sweep.summary import read_summary

    studies = [(d, pts) for d in sweep_dirs if (pts := scaling_points(read_summary(d)))]
    written = []
    for i, (sweep_dir, points) in enumerate(studies):
        suffix = f"_{i}" if len(studies) > 1 else ""
        table = out / TABLE.replace(".md", f"{suffix}.md")
        table.write_text(f"# Data scaling: {sweep_dir}\n\n" + render_markdown(points))
        written += [table, plot(points, out / FIGURE.replace(".png", f"{suffix}.png"))]
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grit_exp.reporting.data_scaling", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder with sweep_summary.json")
    parser.add_argument("--out", type=Path, default=None, help="write data_scaling.md / .png here (default: the sweep dir)")
    args = parser.parse_args(argv)
    from grit_exp.cluster.sweep.summary import read_summary

    try:
        points = scaling_points(read_summary(args.sweep_dir))
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not points:
        print(f"error: {args.sweep_dir} has no job that sets {SAMPLES_KEY} (launch "
              "experiment=ablation_qwen2_5_vl_3b_data_scaling)", file=sys.stderr)
        return 2
    sys.stdout.write(render_markdown(points))
    out = args.out or args.sweep_dir
    out.mkdir(parents=True, exist_ok=True)
    write_data_scaling([args.sweep_dir], out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
