"""The paper's cross-modal consistency table: per result, mean ± std over repeats per benchmark.

The paper reports its "Vision-Language Reasoning Cross-Modal Correlation" on VSR, TallyQA, GQA, MME
and MathVista as the mean and standard deviation over 3 repeats (grit.md section 5). The numbers
come from what evaluation wrote (`eval.consistency=true`, grit_exp.evaluation.consistency): a
metrics.json's `<dataset>.consistency` object ({mean, std, repeats: per-repeat scores, n, ...}), or,
for an in-training quick evaluation, metrics.jsonl's `eval/<dataset>/consistency_mean` / `_std`.
Datasets map to benchmarks as in Table 1 (`paper.COLUMNS`: the same `dataset` spellings). MME is
the unweighted mean of its subsets' scores in each repeat (as its ACC in Table 1), then mean and
sample std (n - 1) over the repeats; from a quick evaluation (no per-repeat scores) only the mean of
the subsets' means. Scores are fractions in [0, 1]: the share of trials where the vision judge chose
the image with the model's boxes (0.5 = chance). A dataset evaluated with judge=rules shows
"unavailable". The paper's own numbers are not in the reference notes, so no Δ column.

Left out: computing the metric (grit_exp.evaluation.consistency) and Table 1 (table1.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grit_exp.reporting.collect import RunResult
from grit_exp.reporting.paper import COLUMNS, method_title, model_title

BENCHMARKS = ("vsr", "tallyqa", "gqa", "mme", "mathvista")  # the paper's order of Table 1 columns used
UNAVAILABLE = "unavailable"
NO_BOX = "no drawable box (n=0)"  # judged, but no sample had a box to draw: nothing to compare


@dataclass
class Consistency:
    mean: float | None
    std: float | None
    n: int | None  # eligible samples (MME: summed over subsets)
    repeats: int | None  # repeats with a score


def _of_dataset(metrics: dict[str, Any]) -> Consistency | str | None:
    """One dataset's consistency from a metrics.json entry or flat quick-eval keys; UNAVAILABLE; None if absent."""
    value = metrics.get("consistency")
    if isinstance(value, str):
        return UNAVAILABLE
    if isinstance(value, dict):
        known = [s for s in value.get("repeats") or [] if s is not None]
        return Consistency(value.get("mean"), value.get("std"), value.get("n"), len(known) or None)
    if metrics.get("consistency_mean") is not None:
        return Consistency(metrics["consistency_mean"], metrics.get("consistency_std"), None, None)
    return None


def _subsets(datasets: dict[str, dict[str, Any]], prefix: str) -> Consistency | str | None:
    """MME: per repeat the unweighted mean of the subsets' scores, then mean and std over the repeats."""
    parts = {name: _of_dataset(m) for name, m in sorted(datasets.items()) if name.startswith(prefix)}
    found = {name: c for name, c in parts.items() if isinstance(c, Consistency)}
    if not found:
        return UNAVAILABLE if any(c == UNAVAILABLE for c in parts.values()) else None
    n = sum(c.n for c in found.values() if c.n is not None) if all(c.n is not None for c in found.values()) else None
    per_subset = [datasets[name]["consistency"].get("repeats") if isinstance(datasets[name].get("consistency"), dict)
                  else None for name in found]
    if all(p for p in per_subset):
        count = min(len(p) for p in per_subset)  # type: ignore[arg-type]
        scores = []
        for k in range(count):
            values = [p[k] for p in per_subset if p[k] is not None]  # type: ignore[index]
            if values:
                scores.append(sum(values) / len(values))
        return Consistency(statistics.fmean(scores) if scores else None,
                           statistics.stdev(scores) if len(scores) >= 2 else None, n, len(scores) or None)
    means = [c.mean for c in found.values() if c.mean is not None]
    return Consistency(sum(means) / len(means) if means else None, None, n, None)


def consistency_values(datasets: dict[str, dict[str, Any]]) -> dict[str, Consistency | str | None]:
    """{benchmark: Consistency | UNAVAILABLE | None} for the paper's five benchmarks."""
    out: dict[str, Consistency | str | None] = {}
    columns = {col.key: col for col in COLUMNS}
    for key in BENCHMARKS:
        col = columns[key]
        if col.subset_prefix and any(name.startswith(col.subset_prefix) for name in datasets):
            out[key] = _subsets(datasets, col.subset_prefix)
            continue
        name = next((d for d in col.datasets if d in datasets), None)
        out[key] = _of_dataset(datasets[name]) if name is not None else None
    return out


def cell(value: Consistency | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if value.mean is None:
        return NO_BOX if value.n == 0 else "–"
    text = f"{value.mean:.3f}" + (f" ± {value.std:.3f}" if value.std is not None else "")
    details = [f"{value.repeats} repeats"] if value.repeats is not None else []
    details += [f"n={value.n}"] if value.n is not None else []
    return text + (f" ({', '.join(details)})" if details else "")


def render_consistency_markdown(results: Sequence[RunResult]) -> str:
    """The table (one line per result with any consistency number or 'unavailable'); "" when none has one."""
    titles = {col.key: col.title for col in COLUMNS}
    header = ["model", "method", *(titles[k] for k in BENCHMARKS), "vision judge", "trained with", "run"]
    lines = []
    for r in sorted(results, key=lambda r: (r.model, r.method, str(r.run_dir), r.step or 0)):
        values = consistency_values(r.datasets)
        if all(v is None for v in values.values()):
            continue
        vision = str(r.meta.get("consistency", "")) if r.meta else "(quick eval)"
        lines.append("| " + " | ".join([model_title(r.model), method_title(r.method),
                                        *(cell(values[k]) for k in BENCHMARKS), vision, r.training, r.label]) + " |")
    if not lines:
        return ""
    notes = [
        "Cross-modal consistency (the paper's Vision-Language Reasoning Cross-Modal Correlation): the share of "
        "trials in which the vision judge picked the image carrying the model's boxes over one with as many random "
        "boxes (0.5 = chance); mean ± sample std over the repeats (the paper: 3), n = eligible samples.",
        "MME: per repeat the unweighted mean of its subsets, then mean ± std over the repeats.",
        "unavailable: evaluated with judge=rules (no vision judge). Blank: not evaluated with eval.consistency=true. "
        f"{NO_BOX}: evaluated with the vision judge, but no answer had a box inside the image to draw.",
    ]
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *lines, "",
                      *(f"{i}. {n}" for i, n in enumerate(notes, start=1))]) + "\n"
