"""Lay collected results out as the paper's Table 1, with the published numbers and the deltas.

One row per result, grouped and ordered by (model, method) as in the paper. Numbers are ACC x100
(the mean raw judge score of a dataset) and GIoU (`giou_paper` by default: the authors' scorer's
convention, the one the paper's numbers used; `giou="exact"` shows `giou`, boxes mapped exactly to
original pixels). Each cell of ours shows its `n` (unique samples; MME: summed over the subsets) and
a dagger when n < MIN_COMPARABLE_N, too few to compare with the paper (see `footnotes`). MME's ACC is the unweighted mean of its subsets' ACC (our reading of "the paper
averages the MME subsets"; mme_val.jsonl has 240 rows in four subsets: with equal subset sizes this
is also the pooled mean). Δ = ours - paper, in the table's units. Every row says how it was judged.

Renders Markdown, CSV (one machine-readable line per result, full precision) and LaTeX, plus an
"all datasets" Markdown table that also lists datasets outside Table 1. Left out: finding results
(`collect.py`) and plots (`curves.py`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grit_exp.reporting.collect import RunResult
from grit_exp.reporting.paper import (
    COLUMNS,
    METHOD_ORDER,
    MME_SUBSETS,
    MODEL_ORDER,
    PAPER_TABLE1,
    Column,
    PaperValue,
    method_title,
    metric_keys,
    model_title,
)

GIOU_FIELDS = {"paper": "giou_paper", "exact": "giou"}
# Below this many samples a cell is marked: the 95% interval of an ACC (binomial, worst case p = 0.5) is
# wider than +-1.96 * 0.5 / sqrt(200) = +-6.9 points; the paper's eval sets have 240 to ~2150 samples.
MIN_COMPARABLE_N = 200
FEW_SAMPLES_MARK = "†"


@dataclass
class Table1Row:
    result: RunResult
    values: dict[str, float | None]  # metric key -> ACC x100 / GIoU; None: blank cell
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int | None] = field(default_factory=dict)  # column key -> n (samples evaluated)

    @property
    def paper(self) -> dict[str, PaperValue] | None:
        return PAPER_TABLE1.get((self.result.model, self.result.method))

    def delta(self, key: str) -> float | None:
        paper, ours = self.paper, self.values.get(key)
        if paper is None or ours is None:
            return None
        return ours - paper[key].value


def _number(entry: dict[str, Any] | None, name: str) -> float | None:
    if not entry or (entry.get("n") is not None and entry["n"] == 0):
        return None
    value = entry.get(name)
    if value is None or isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _column_entry(col: Column, datasets: dict[str, dict[str, Any]]) -> tuple[str | None, dict[str, Any] | None]:
    for name in col.datasets:
        if name in datasets:
            return name, datasets[name]
    return None, None


def mme_acc(datasets: dict[str, dict[str, Any]], prefix: str = "mme_") -> tuple[float | None, list[str]]:
    """(unweighted mean ACC x100 of the MME subsets present, the subsets averaged)."""
    subsets = sorted(name for name in datasets if name.startswith(prefix))
    accs = [(name, _number(datasets[name], "acc")) for name in subsets]
    used = [name for name, acc in accs if acc is not None]
    if not used:
        return None, []
    return 100.0 * sum(acc for _, acc in accs if acc is not None) / len(used), used


def column_values(datasets: dict[str, dict[str, Any]], giou: str = "paper") -> tuple[dict[str, float | None], list[str]]:
    """Table 1's numbers (ACC x100, GIoU) from {dataset: metrics} (a metrics.json, or the `eval/<dataset>/<metric>`
    keys of a metrics.jsonl record), and notes about how they were formed. Table 3 (sweeps.py) uses it too."""
    giou_field = GIOU_FIELDS[giou]
    values: dict[str, float | None] = dict.fromkeys(metric_keys())
    notes: list[str] = []
    for col in COLUMNS:
        if col.subset_prefix and any(name.startswith(col.subset_prefix) for name in datasets):
            values[f"{col.key}_acc"], used = mme_acc(datasets, col.subset_prefix)
            if used and set(used) != set(MME_SUBSETS):
                notes.append(f"MME ACC averaged over {len(used)} subset(s): {', '.join(used)}")
            continue
        _, entry = _column_entry(col, datasets)
        if col.acc:
            acc = _number(entry, "acc")
            values[f"{col.key}_acc"] = None if acc is None else 100.0 * acc
        if col.giou:
            values[f"{col.key}_giou"] = _number(entry, giou_field)
            if entry is not None and values[f"{col.key}_giou"] is None and _number(entry, "giou") is not None:
                notes.append(f"{col.title}: no {giou_field} in the results (only giou); see --giou exact")
    return values, notes


def table1_values(result: RunResult, giou: str = "paper") -> tuple[dict[str, float | None], list[str]]:
    """Table 1's numbers of one result (ACC x100, GIoU) and notes about how they were formed."""
    values, notes = column_values(result.datasets, giou)
    if all(v is None for v in values.values()) and result.datasets:
        notes.append(f"no Table 1 benchmark among its datasets ({', '.join(sorted(result.datasets))}); "
                     "see the all-datasets table")
    failures = {name: int(m["judge_failures"]) for name, m in sorted(result.datasets.items()) if m.get("judge_failures")}
    if failures:
        notes.append("judge failures (counted, not scored): " + ", ".join(f"{k} {v}" for k, v in failures.items()))
    if result.kind == "quick_eval":
        notes.append(f"in-training quick evaluation (metrics.jsonl step {result.step}): no deduplication")
    return values, notes


def _count(entry: dict[str, Any] | None) -> int | None:
    n = (entry or {}).get("n")
    return int(n) if isinstance(n, int | float) and not isinstance(n, bool) else None


def column_counts(result: RunResult) -> dict[str, int | None]:
    """n per Table 1 column of one result: the dataset's unique samples; MME: the subsets' sum."""
    counts: dict[str, int | None] = {}
    for col in COLUMNS:
        if col.subset_prefix and any(name.startswith(col.subset_prefix) for name in result.datasets):
            subsets = [_count(m) for name, m in result.datasets.items() if name.startswith(col.subset_prefix)]
            counts[col.key] = sum(n for n in subsets if n is not None) if any(n is not None for n in subsets) else None
        else:
            counts[col.key] = _count(_column_entry(col, result.datasets)[1])
    return counts


def _order(row: Table1Row) -> tuple:
    r = row.result
    model_rank = MODEL_ORDER.index(r.model) if r.model in MODEL_ORDER else len(MODEL_ORDER)
    method_rank = METHOD_ORDER.index(r.method) if r.method in METHOD_ORDER else len(METHOD_ORDER)
    return (model_rank, r.model, method_rank, r.method, str(r.run_dir), r.step or 0)


def build_table1(results: Sequence[RunResult], giou: str = "paper") -> list[Table1Row]:
    if giou not in GIOU_FIELDS:
        raise ValueError(f"giou={giou!r} is not valid; choose one of {', '.join(GIOU_FIELDS)}")
    rows = [Table1Row(r, *table1_values(r, giou), counts=column_counts(r)) for r in results]
    return sorted(rows, key=_order)


# ----------------------------------------------------------------------------------------- cells


def _fmt(key: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    digits = 1 if key.endswith("_acc") else 3
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def count_text(n: int | None) -> str:
    """" (n=12)†" for a cell of ours: its sample count, marked when too few to compare with the paper."""
    if n is None:
        return ""
    return f" (n={n})" + (FEW_SAMPLES_MARK if n < MIN_COMPARABLE_N else "")


def _cells(col: Column, parts: dict[str, str], n: int | None = None) -> str:
    keys = [f"{col.key}_acc"] * col.acc + [f"{col.key}_giou"] * col.giou
    texts = [parts[k] for k in keys]
    return "" if all(t == "–" for t in texts) else " / ".join(texts) + count_text(n)


def _row_cells(row: Table1Row, which: str) -> list[str]:
    if which == "ours":
        parts = {k: _fmt(k, v) for k, v in row.values.items()}
        return [_cells(col, parts, row.counts.get(col.key)) for col in COLUMNS]
    elif which == "paper":
        paper = row.paper or {}
        parts = {k: paper[k].text if k in paper else "–" for k in metric_keys()}
    else:
        parts = {k: _fmt(k, row.delta(k), signed=True) for k in metric_keys()}
    return [_cells(col, parts) for col in COLUMNS]


def column_titles() -> list[str]:
    out = []
    for col in COLUMNS:
        unit = "ACC / GIoU" if col.acc and col.giou else ("ACC" if col.acc else "GIoU")
        out.append(f"{col.title} {unit}")
    return out


def _lines(rows: Sequence[Table1Row], paper: bool) -> list[tuple[str, str, str, list[str], str, str, str, str]]:
    """(model, method, kind of row, cells, trained with, scored with, judge, run) for ours / paper / delta lines."""
    out = []
    for row in rows:
        r = row.result
        model, method = model_title(r.model), method_title(r.method)
        out.append((model, method, "ours", _row_cells(row, "ours"), r.training, r.scoring, r.judge, r.label))
        if paper and row.paper is not None:
            out.append((model, method, "paper", _row_cells(row, "paper"), "", "", "gpt-4o (paper)", "GRIT paper, Table 1"))
            out.append((model, method, "Δ", _row_cells(row, "delta"), "", "", "", ""))
    return out


def footnotes(rows: Sequence[Table1Row], giou: str = "paper", paper: bool = True) -> list[str]:
    notes = [
        "ACC: mean raw judge score x100 per dataset (not binarised); the `judge` column says how each row was "
        "judged. The paper used GPT-4o; rows judged by `rules` are not comparable with its numbers.",
        f"GIoU: `{GIOU_FIELDS[giou]}` — "
        + ("the authors' scorer's convention (Qwen boxes not rescaled, InternVL boxes truncated to ints from "
           "[0, 1000]), as in the paper." if giou == "paper" else
           "predicted boxes mapped exactly to original pixels (not the paper's convention)."),
        "MME ACC: the unweighted mean of the subsets' ACC (" + ", ".join(MME_SUBSETS) + ").",
        "Blank cell: the dataset is not in that run's results.",
        f"n: unique samples behind a cell of ours (MME: summed over its subsets). {FEW_SAMPLES_MARK} marks n < "
        f"{MIN_COMPARABLE_N}: the 95% interval of an ACC is then wider than ±7 points (binomial, worst case), too "
        "few samples to compare with the paper's numbers (its eval sets have 240 to ~2150).",
        "trained with: the training run's saved config (reward preset grit_paper / grit_code, advantage eps, "
        "prompts x G per optimizer step); scored with: the judge preset (paper: temperature 0, max_tokens 64, "
        "tolerant parser; code: the released call, no temperature / max_tokens, the released parser) and how an "
        "answer without <answer> was scored (untagged=zero: 0, as the released scoring; judge_whole_completion: "
        "judged whole; whole response: the direct prompt), from metrics.json _meta.",
        "method: what the weights are, not the prompt: GRIT only for GRPO-GR-trained weights (a training run, "
        "a checkpoint of one, or a released GRIT checkpoint); a base model with the GRIT prompt is CoT.",
    ]
    if paper:
        notes.append("Δ = ours − paper, in the table's units (ACC points x100, GIoU).")
    for row in rows:
        notes.extend(f"{row.result.label}: {note}." for note in row.notes)
    return notes


def render_markdown(rows: Sequence[Table1Row], paper: bool = True, giou: str = "paper") -> str:
    header = ["model", "method", "row", *column_titles(), "trained with", "scored with", "judge", "run"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model, method, kind, cells, training, scoring, judge, run in _lines(rows, paper):
        lines.append("| " + " | ".join([model, method, kind, *cells, training, scoring, judge, run]) + " |")
    lines.append("")
    lines.extend(f"{i}. {note}" for i, note in enumerate(footnotes(rows, giou, paper), start=1))
    return "\n".join(lines) + "\n"


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(round(value, 6))


def render_csv(rows: Sequence[Table1Row], paper: bool = True) -> str:
    """One line per result; per metric: ours (full precision), and with `paper` the published value and Δ."""
    meta = ["model", "method", "run", "source", "kind", "step", "judge", "decoding", "experiment", "prompt", "checkpoint",
            "training", "scoring", "judge_preset", "judged_answer", "untagged_answer"]
    metrics = []
    for key in metric_keys():
        metrics += [key, f"{key}_paper", f"{key}_delta"] if paper else [key]
    metrics += [f"{col.key}_n" for col in COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(meta + metrics)
    for row in rows:
        r = row.result
        line = [r.model, r.method, r.label, str(r.source), r.kind, "" if r.step is None else r.step, r.judge,
                r.meta.get("decoding", ""), r.experiment or "", r.prompt, r.model_path, r.training, r.scoring,
                r.meta.get("judge_preset", ""), r.meta.get("judged_answer", ""), r.meta.get("untagged_answer", "")]
        for key in metric_keys():
            line.append(_csv_number(row.values[key]))
            if paper:
                published = (row.paper or {}).get(key)
                line += [published.text if published else "", _csv_number(row.delta(key))]
        line += ["" if row.counts.get(col.key) is None else row.counts[col.key] for col in COLUMNS]
        writer.writerow(line)
    return buf.getvalue()


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "–": "--", "−": "-",
                "—": "---", "Δ": r"$\Delta$", "`": "", "†": r"$^\dagger$", "±": r"$\pm$"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def render_latex(rows: Sequence[Table1Row], paper: bool = True, giou: str = "paper") -> str:
    header = ["Model", "Method", "", *column_titles(), "Judge"]
    out = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{" + "lll" + "c" * len(COLUMNS) + "l}",
           r"\hline", " & ".join(tex_escape(h) for h in header) + r" \\", r"\hline"]
    for model, method, kind, cells, _training, _scoring, judge, _run in _lines(rows, paper):
        kind_tex = r"$\Delta$" if kind == "Δ" else tex_escape(kind)
        out.append(" & ".join([tex_escape(model), tex_escape(method), kind_tex, *map(tex_escape, cells),
                               tex_escape(judge)]) + r" \\")
    out += [r"\hline", r"\end{tabular}"]
    out.append(r"\caption{Table 1 layout (ACC$\times$100 / GIoU). " + " ".join(
        tex_escape(n) for n in footnotes(rows, giou, paper)) + "}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


ALL_DATASET_FIELDS = ("n", "acc", "giou", "giou_paper", "ovd_map", "format", "mean_boxes",
                      "mean_completion_tokens", "judge_failures")


def render_all_datasets_markdown(results: Sequence[RunResult]) -> str:
    """Every dataset of every result with its raw metrics (ACC in [0, 1] here), Table 1 or not."""
    header = ["run", "model", "method", "dataset", *ALL_DATASET_FIELDS, "judge"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(results, key=lambda r: (str(r.run_dir), r.step or 0)):
        for name, m in sorted(r.datasets.items()):
            cells = []
            for key in ALL_DATASET_FIELDS:
                v = m.get(key)
                cells.append("" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v)))
            lines.append("| " + " | ".join([r.label, r.model, r.method, name, *cells, r.judge]) + " |")
    return "\n".join(lines) + "\n"


def render_paper_markdown() -> str:
    """The paper's Table 1, verbatim."""
    from grit_exp.reporting.paper import PAPER_TABLE1_MARKDOWN

    return PAPER_TABLE1_MARKDOWN
