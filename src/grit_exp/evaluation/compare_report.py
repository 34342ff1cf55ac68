"""compare.html: two evaluations of the same rows side by side (a run before and after training).

    python -m grit_exp.report compare <run>/eval/step_0 <run>/eval/step_30 [--out compare.html] [--pairs 12]

Reads each folder's metrics.json and samples.jsonl (what `grit_exp.evaluate` and the training
run's evaluations write), and writes one self-contained page: the summary metrics of A and B per
dataset with the change, how many samples were fixed, broke, still fail or stay fine
(`samples.failure_kinds`), then up to `pairs` samples side by side, the changed ones first, each
with its picture drawn now (boxes numbered, legend inside) and the reasoning with the same numbers.
Samples are matched by (dataset, question, image, answer), the deduplication key.

Left out: scoring (it never re-scores), tables across many runs (`grit_exp.report`).
"""

from __future__ import annotations

import html
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grit_exp.evaluation.html_report import STYLE, SUMMARY_COLUMNS, completion_block, kinds_html, picture_tag
from grit_exp.evaluation.pictures import sample_picture
from grit_exp.evaluation.samples import failure_kinds

OUTCOMES = ("broke", "fixed", "still failing", "still fine")
COMPARED_METRICS = (*((key, title) for key, title, _ in SUMMARY_COLUMNS), ("reward", "reward"))


class CompareError(ValueError):
    """An input folder cannot be compared; the message names it and what was expected."""


def read_evaluation(folder: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics.json, samples.jsonl records) of an evaluation folder; a clear error otherwise."""
    folder = Path(folder)
    if not (folder / "metrics.json").is_file() or not (folder / "samples.jsonl").is_file():
        found = sorted(str(p.parent) for p in folder.glob("eval/*/metrics.json")) if folder.is_dir() else []
        hint = f"; its evaluations: {', '.join(found)}" if found else ""
        raise CompareError(f"{folder}: expected an evaluation folder with metrics.json and samples.jsonl "
                           f"(an evaluate run, or <run>/eval/step_<N>){hint}")
    metrics = json.loads((folder / "metrics.json").read_text())
    records = []
    for lineno, line in enumerate((folder / "samples.jsonl").read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise CompareError(f"{folder / 'samples.jsonl'}:{lineno}: not valid JSON: {err.msg}") from err
    return metrics, records


def sample_key(record: dict[str, Any]) -> tuple[str, str, str, str]:
    return (record["dataset"], record["question"], str(record["image"]), record["answer"])


def outcome(before: dict[str, Any], after: dict[str, Any]) -> str:
    failed_before, failed_after = bool(failure_kinds(before)), bool(failure_kinds(after))
    if failed_before != failed_after:
        return "broke" if failed_after else "fixed"
    return "still failing" if failed_after else "still fine"


def pair_samples(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> list[tuple[str, dict, dict]]:
    """(outcome, record in A, record in B) for every sample in both, changed outcomes first."""
    by_key = {sample_key(r): r for r in b}
    pairs = [(outcome(r, by_key[sample_key(r)]), r, by_key[sample_key(r)]) for r in a if sample_key(r) in by_key]
    return sorted(pairs, key=lambda p: (OUTCOMES.index(p[0]), p[1]["index"]))


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else html.escape(str(value)))


def metrics_table(a: dict[str, Any], b: dict[str, Any]) -> str:
    datasets = list(dict.fromkeys(n for n in [*a, *b] if not n.startswith("_")))
    rows = []
    for name in datasets:
        ma, mb = a.get(name) or {}, b.get(name) or {}
        for key, title in COMPARED_METRICS:
            va, vb = ma.get(key), mb.get(key)
            if va is None and vb is None:
                continue
            change = f"{vb - va:+.4f}" if isinstance(va, int | float) and isinstance(vb, int | float) else "-"
            rows.append(f'<tr><th>{html.escape(name)}</th><td>{html.escape(title)}</td><td class="num">{_num(va)}</td>'
                        f'<td class="num">{_num(vb)}</td><td class="num">{change}</td></tr>')
    return ('<table class="compare-metrics"><tr><th>dataset</th><th>metric</th><th>A (before)</th><th>B (after)</th>'
            f"<th>change</th></tr>{''.join(rows)}</table>")


def _side(record: dict[str, Any], picture: Path | None, title: str) -> str:
    return (f'<div class="side"><h4>{html.escape(title)} {kinds_html(failure_kinds(record))}</h4>'
            f"{picture_tag(picture, title)}{completion_block(record)}</div>")


def _picture(record: dict[str, Any], folder: Path, name: str) -> Path | None:
    if record.get("image_missing") or not Path(str(record["image"])).is_file():
        return None
    return sample_picture(record, folder / name)


def _describe(folder: Path, metrics: dict[str, Any]) -> str:
    meta = metrics.get("_meta") or {}
    parts = [f"{k} {meta[k]}" for k in ("model", "checkpoint", "step", "prompt", "judge") if meta.get(k) is not None]
    return f"<code>{html.escape(str(folder))}</code> ({html.escape(', '.join(parts))})"


def write_compare(a_dir: Path, b_dir: Path, out: Path, pairs: int = 12) -> Path:
    """Write the before/after page of evaluation folders `a_dir` (before) and `b_dir` (after) to `out`."""
    (a_metrics, a_records), (b_metrics, b_records) = read_evaluation(a_dir), read_evaluation(b_dir)
    matched = pair_samples(a_records, b_records)
    if not matched:
        raise CompareError(f"{a_dir} and {b_dir} share no samples (matched by dataset, question, image, answer)")
    counts = {name: sum(1 for o, _, _ in matched if o == name) for name in OUTCOMES}
    blocks = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (result, ra, rb) in enumerate(matched[:pairs]):
            pa, pb = _picture(ra, Path(tmp), f"a_{k}.png"), _picture(rb, Path(tmp), f"b_{k}.png")
            blocks.append(
                f'<div class="pair {result.replace(" ", "-")}"><h3>#{ra["index"]} &middot; {html.escape(ra["dataset"])}: '
                f"{html.escape(result)}</h3><p><b>Question:</b> {html.escape(ra['question'])} &nbsp; <b>Ground truth:</b> "
                f'{html.escape(ra["answer"])}</p><div class="sides">{_side(ra, pa, "A (before)")}'
                f'{_side(rb, pb, "B (after)")}</div></div>'
            )
    body = [
        "<h1>grit-exp: before / after</h1>",
        f"<p>A (before): {_describe(a_dir, a_metrics)}<br>B (after): {_describe(b_dir, b_metrics)}</p>",
        "<h2>Summary</h2>", metrics_table(a_metrics, b_metrics),
        f"<h2>Samples: {len(matched)} in both</h2>",
        '<table class="outcomes"><tr>' + "".join(f"<th>{o}</th>" for o in OUTCOMES) + "</tr><tr>"
        + "".join(f'<td class="num">{counts[o]}</td>' for o in OUTCOMES) + "</tr></table>",
        f"<p>{len(blocks)} side by side, changed outcomes first (a sample fails when its image is missing, the "
        "judge failed, it has no boxes, or its answer is wrong).</p>",
        *blocks,
    ]
    style = STYLE + ".sides { display: flex; gap: 1.5em; } .side { flex: 1; min-width: 0; } .side img { max-width: 100%; }"
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>grit-exp before / after</title>'
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def compare_main(argv: Sequence[str]) -> int:
    """`python -m grit_exp.report compare A B [--out FILE] [--pairs N]`; 2 on bad input, naming it."""
    import argparse
    import logging

    parser = argparse.ArgumentParser(prog="python -m grit_exp.report compare",
                                     description="Two evaluations of the same rows side by side (before / after).")
    parser.add_argument("before", type=Path, help="evaluation folder A, e.g. <run>/eval/step_0")
    parser.add_argument("after", type=Path, help="evaluation folder B, e.g. <run>/eval/step_30")
    parser.add_argument("--out", type=Path, default=None, help="the page to write (default: <after>/compare.html)")
    parser.add_argument("--pairs", type=int, default=12, help="samples shown side by side (default 12)")
    args = parser.parse_args(list(argv))
    log = logging.getLogger("grit_exp.report")
    if args.pairs < 0:
        parser.error(f"--pairs {args.pairs}: must be >= 0")
    try:
        out = write_compare(args.before, args.after, args.out or args.after / "compare.html", args.pairs)
    except CompareError as err:
        log.error("%s", err)
        return 2
    log.info("wrote %s", out)
    return 0
