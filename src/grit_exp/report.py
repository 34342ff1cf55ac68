"""`python -m grit_exp.report DIRS...`: the paper's Table 1 (and curves) from saved run directories.

    python -m grit_exp.report outputs/2025-06-01 multirun/2025-06-02/10-00-00 --out reports/table1
    python -m grit_exp.report RUN --format md,csv,tex --no-paper --giou exact --all-steps
    python -m grit_exp.report compare RUN/eval/step_0 RUN/eval/step_30   # before/after side by side: compare.html

Collects every metrics.json under DIRS (evaluate runs, training runs' eval/step_<N>/, multirun
folders) with the config saved next to it, prints the Table 1 layout as Markdown (ours, the paper's
number and Δ per row, the judge of each row, footnotes on conventions) and a table of every dataset.
With --out it also writes table1.{md,csv,tex} (per --format), all_datasets.md and curve PNGs drawn
from each run's metrics.jsonl. A multirun folder with a sweep_summary.json (grit_exp.cluster.sweep) also gets
its sweep table, and the paper's Table 3 ablation next to it for that sweep (sweeps.md with --out).
Results evaluated with eval.consistency=true also fill the paper's cross-modal consistency table
(mean ± std over repeats per benchmark; consistency.md with --out).
A plain argparse CLI, not Hydra: it reads runs, it configures none.
Left out: computing metrics (grit_exp.evaluate does that; the report never re-scores).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from grit_exp.errors import EXIT_USER_ERROR, GritError, one_line
from grit_exp.reporting.collect import ReportError, collect_results, find_result_dirs, find_sweep_dirs
from grit_exp.reporting.consistency_table import render_consistency_markdown
from grit_exp.reporting.curves import plot_all
from grit_exp.reporting.data_scaling import write_data_scaling
from grit_exp.reporting.sweeps import render_sweeps
from grit_exp.reporting.table1 import (
    GIOU_FIELDS,
    build_table1,
    render_all_datasets_markdown,
    render_csv,
    render_latex,
    render_markdown,
)

log = logging.getLogger("grit_exp.report")
FORMATS = ("md", "csv", "tex")


def parse_formats(text: str) -> list[str]:
    formats = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise argparse.ArgumentTypeError(f"--format {text!r}: unknown {bad or 'empty'}; choose from {','.join(FORMATS)}")
    return formats


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grit_exp.report", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="run or multirun directories (searched recursively), or metrics.json files")
    p.add_argument("--out", type=Path, default=None, help="write table1.*, all_datasets.md and curve PNGs here")
    p.add_argument("--format", type=parse_formats, default=list(FORMATS), help="comma-separated: md,csv,tex (default: all)")
    p.add_argument("--no-paper", action="store_true", help="leave out the paper's numbers and the deltas")
    p.add_argument("--giou", choices=sorted(GIOU_FIELDS), default="paper",
                   help="paper: giou_paper, the authors' scorer's convention (default); exact: boxes rescaled exactly")
    p.add_argument("--all-steps", action="store_true", help="every evaluated step of training runs, not only the last")
    p.add_argument("--skip-incomplete", action="store_true", help="skip (with a warning) results whose run has no saved config")
    p.add_argument("--overlay-key", default="train/reward", help="metrics.jsonl key overlaid across runs")
    return p


REPORT_MARKER = ".grit_report"  # marks a folder the report wrote into: it may overwrite its own files there


def check_report_dir(out: Path) -> None:
    """`--out` must be new, empty, or a folder the report wrote before: it never overwrites a user's files."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / REPORT_MARKER).is_file())):
        raise GritError(
            f"--out {out}: {'is a file' if not out.is_dir() else 'holds files the report did not write'}; "
            "it was left untouched. Choose a new or empty folder"
        )


def write_report(
    dirs: Sequence[Path], out: Path | None, formats: Sequence[str] = FORMATS, paper: bool = True, giou: str = "paper",
    all_steps: bool = False, skip_incomplete: bool = False, overlay_key: str = "train/reward",
) -> dict[str, str]:
    """Collect, lay out, and (with `out`) write; returns {"md", "csv", "tex", "all", "sweeps", "consistency": text}
    ("sweeps" / "consistency": "" when no sweep / no result with the consistency metric)."""
    sweeps = find_sweep_dirs(dirs)
    try:
        results = collect_results(dirs, all_steps=all_steps, skip_incomplete=skip_incomplete)
    except ReportError:
        if not sweeps:
            raise
        results = []  # a sweep whose jobs all failed: its summary is the report
    rows = build_table1(results, giou=giou)
    texts = {
        "md": render_markdown(rows, paper=paper, giou=giou),
        "csv": render_csv(rows, paper=paper),
        "tex": render_latex(rows, paper=paper, giou=giou),
        "all": render_all_datasets_markdown(results),
        "sweeps": render_sweeps(sweeps, paper=paper),
        "consistency": render_consistency_markdown(results),
    }
    if out is not None:
        check_report_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / REPORT_MARKER).write_text("written by python -m grit_exp.report; it may overwrite its own files here\n")
        for fmt in formats:
            (out / f"table1.{fmt}").write_text(texts[fmt])
        (out / "all_datasets.md").write_text(texts["all"])
        if sweeps:
            (out / "sweeps.md").write_text(texts["sweeps"])
            write_data_scaling(sweeps, out)  # data_scaling.{md,png} of a dataset.num_samples sweep
        if texts["consistency"]:
            (out / "consistency.md").write_text(texts["consistency"])
        _, curve_dirs = find_result_dirs(list(dirs))
        written = plot_all(curve_dirs, out, overlay_key)
        log.info("wrote %s and %d curve figure(s) to %s", ", ".join(f"table1.{f}" for f in formats), len(written), out)
    return texts


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:  # two evaluations side by side (grit_exp.evaluation.compare_report)
        from grit_exp.evaluation.compare_report import compare_main

        return compare_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        texts = write_report(args.dirs, args.out, args.format, paper=not args.no_paper, giou=args.giou,
                             all_steps=args.all_steps, skip_incomplete=args.skip_incomplete,
                             overlay_key=args.overlay_key)
    except (ReportError, GritError) as err:  # bad input: one line, exit code 2; anything else keeps its traceback
        log.error("%s", one_line(str(err)))
        return EXIT_USER_ERROR
    sys.stdout.write("## Table 1 layout\n\n" + texts["md"] + "\n## All datasets\n\n" + texts["all"])
    if texts["consistency"]:
        sys.stdout.write("\n## Cross-modal consistency\n\n" + texts["consistency"])
    if texts["sweeps"]:
        sys.stdout.write("\n## Sweeps\n\n" + texts["sweeps"])
    if args.out is None:
        log.info("pass --out DIR to write table1.{md,csv,tex}, all_datasets.md and the curves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
