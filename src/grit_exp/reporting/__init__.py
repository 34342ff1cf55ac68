"""Tables and curves from saved run directories (`python -m grit_exp.report`, notebooks).

`collect_results` finds metrics.json files (and quick-eval records) with their saved configs;
`build_table1` lays them out as the paper's Table 1 next to its published numbers; `render_*` write
Markdown, CSV and LaTeX; `plot_all` draws reward and metric curves from metrics.jsonl.
"""

from grit_exp.reporting.collect import (
    ReportError,
    RunResult,
    collect_results,
    find_result_dirs,
    newest_run_dir,
    read_curve_records,
)
from grit_exp.reporting.curves import plot_all, plot_overlay, plot_run_curves
from grit_exp.reporting.paper import COLUMNS, MME_SUBSETS, PAPER_TABLE1, PAPER_TABLE1_MARKDOWN
from grit_exp.reporting.samples import PicturedSample, pictured_samples
from grit_exp.reporting.table1 import (
    Table1Row,
    build_table1,
    render_all_datasets_markdown,
    render_csv,
    render_latex,
    render_markdown,
    render_paper_markdown,
)

__all__ = [
    "COLUMNS", "MME_SUBSETS", "PAPER_TABLE1", "PAPER_TABLE1_MARKDOWN", "PicturedSample", "ReportError", "RunResult",
    "Table1Row", "newest_run_dir", "pictured_samples",
    "build_table1", "collect_results", "find_result_dirs", "plot_all", "plot_overlay", "plot_run_curves",
    "read_curve_records", "render_all_datasets_markdown", "render_csv", "render_latex", "render_markdown",
    "render_paper_markdown",
]
