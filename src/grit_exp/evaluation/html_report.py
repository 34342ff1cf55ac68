"""report.html: one self-contained page a person reads top to bottom.

1. A summary per dataset (n, accuracy, GIoU, format, OVD precision and failures) with what each
   number means, and the run it describes (model, checkpoint, prompt, judge, decoding).
2. Every failure (missing image, judge failure, no boxes, wrong answer: `samples.failure_kinds`),
   one line each with its image file, linked to its picture when it has one.
   With zoom turns, a table of the zoom metrics per dataset.
3. The pictured samples, failures first: the picture (a PNG data URL, so the page stands alone) with
   the model's boxes numbered and a legend inside it, next to the question, ground truth, answer,
   the reasoning with the same numbers in front of each box, the box list, scores and judge verdict;
   with zoom turns, each turn's crop inline beside its box drawn on the original.
4. All metrics and the run metadata, folded.

Every piece of text from data or models is HTML-escaped. Metrics that are not numbers (the
consistency metric without a vision judge) are shown as the text they hold. `boxes_html` and
`picture_tag` are shared with the before/after page (`compare_report.py`) and the demo.

Left out: drawing (`pictures.py`), tables across runs (`grit_exp.report`).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grit_exp.evaluation.samples import FAILURE_KINDS, failure_kinds
from grit_exp.evaluation.zoom_metrics import ZOOM_KEYS
from grit_exp.evaluation.zoom_pictures import zoom_html
from grit_exp.grounding.boxes import parse_paper_boxes
from grit_exp.rewards.answer_terms import answer_text

TABLE_KEYS = (
    "n", "n_scored", "missing_images", "acc", "n_judged", "judge_failures", "no_answer_tag", "giou", "giou_paper", "ovd_map",
    "ovd_map_paper", "format", "mean_boxes", "mean_completion_tokens", "reward", "consistency",
)
# (metrics.json key, column title, what it means): the summary at the top of the page
SUMMARY_COLUMNS = (
    ("n", "n", "unique samples evaluated (duplicates removed); those with a missing image are counted, not scored"),
    ("acc", "accuracy", "mean judge score (0 to 1) of the text in <answer> (direct prompt: of the whole "
                        "response) over judged samples; box answers and judge failures are not in it"),
    ("giou", "GIoU", "overlap (IoU) of the union of the model's boxes with the union of the ground-truth boxes, "
                     "boxes mapped exactly to image pixels; a sample without predicted boxes scores 0"),
    ("format", "format", "fraction of completions in the <think>…</think> <rethink>…</rethink> <answer> form"),
    ("ovd_map", "OVD precision", "for rows whose answer is a box: precision of the model's answer boxes"),
    ("no_answer_tag", "no <answer>", "completions without an <answer> tag; unless the prompt judges the whole "
                                     "response, each scores 0 in accuracy with eval.untagged_answer=zero (the "
                                     "released scoring) or is judged whole with judge_whole_completion (see the "
                                     "run metadata)"),
)
MODEL_TAG_COLOR = "#e61414"
# inline, so the tags look the same where the page's style sheet is not there (the demo's HTML output)
TAG_STYLE = "color:#fff;border-radius:3px;padding:0 4px;font-weight:bold;"

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin-bottom: 1em; }
td, th { border: 1px solid #bbb; padding: 3px 7px; font-size: 0.9em; vertical-align: top; }
td.num { text-align: right; }
th { background: #eee; }
dl.glossary dt { font-weight: bold; float: left; clear: left; width: 9em; }
dl.glossary dd { margin-left: 10em; margin-bottom: 0.3em; }
.sample { display: flex; gap: 1.5em; border-top: 1px solid #ccc; padding: 1em 0; }
.sample img { max-width: 520px; height: auto; border: 1px solid #999; }
.text { flex: 1; min-width: 0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f6f6; padding: 0.5em; }
.tag { background: #e61414; color: #fff; border-radius: 3px; padding: 0 4px; font-weight: bold; font-size: 0.85em; }
.kind { background: #fbe3e3; border: 1px solid #d88; border-radius: 3px; padding: 0 4px; margin-right: 0.3em; }
.ok { background: #e3f6e3; border: 1px solid #8c8; border-radius: 3px; padding: 0 4px; }
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and "mean" in value:
        mean, std = value.get("mean"), value.get("std")
        if mean is None:
            return "-"
        return f"{mean:.3f} &plusmn; {std:.3f}" if std is not None else f"{mean:.3f}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _datasets(metrics: dict[str, Any]) -> list[str]:
    return [name for name in metrics if not name.startswith("_")]


def summary_table(metrics: dict[str, Any]) -> str:
    """The per-dataset summary (SUMMARY_COLUMNS present in the results, plus failures) and its glossary."""
    datasets = _datasets(metrics)
    columns = [c for c in SUMMARY_COLUMNS if c[0] == "n" or any(metrics[d].get(c[0]) is not None for d in datasets)]
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in columns)
    rows = []
    for name in datasets:
        m = metrics[name]
        failures = [f"{m[k]} {label}" for k, label in (("missing_images", "missing image(s)"),
                                                       ("judge_failures", "judge failure(s)")) if m.get(k)]
        cells = "".join(f'<td class="num">{_fmt(m.get(key))}</td>' for key, _, _ in columns)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}<td>{html.escape(', '.join(failures) or 'none')}</td></tr>")
    glossary = "".join(f"<dt>{html.escape(title)}</dt><dd>{html.escape(meaning)}</dd>" for _, title, meaning in columns)
    return (f'<table class="summary"><tr><th>dataset</th>{head}<th>missing images, judge failures</th></tr>{"".join(rows)}</table>'
            f'<dl class="glossary">{glossary}</dl><div style="clear:both"></div>')


def all_metrics_table(metrics: dict[str, Any]) -> str:
    datasets = _datasets(metrics)
    keys = [k for k in TABLE_KEYS if any(k in metrics[d] for d in datasets)]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for name in datasets:
        cells = "".join(f'<td class="num">{_fmt(metrics[name].get(k))}</td>' for k in keys)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f'<table class="all-metrics"><tr><th>dataset</th>{head}</tr>{"".join(rows)}</table>'


def zoom_table(metrics: dict[str, Any]) -> str:
    """Zoom turns per dataset (metrics.json <dataset>.zoom, zoom_metrics.py); "" when zoom was off."""
    datasets = [d for d in _datasets(metrics) if metrics[d].get("zoom")]
    if not datasets:
        return ""
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ZOOM_KEYS)
    rows = "".join(f"<tr><th>{html.escape(d)}</th>" + "".join(f'<td class="num">{_fmt(metrics[d]["zoom"].get(k))}</td>'
                                                                for k in ZOOM_KEYS) + "</tr>" for d in datasets)
    return (f'<h2>Zoom turns</h2><table class="zoom"><tr><th>dataset</th>{head}</tr>{rows}</table>'
            "<p>mean_turns = 1 + crops fed back; crop_iou: union of the crops vs union of the ground-truth boxes; "
            "acc_zoomed / acc_not_zoomed: accuracy of answers reached after at least one crop / without.</p>")


def boxes_html(text: str, spans: Sequence[tuple[int, int]], colors: Sequence[str] = (MODEL_TAG_COLOR,)) -> str:
    """`text` escaped, with a numbered tag (1, 2, ...) in front of each box span, as in the picture."""
    out, last = [], 0
    for number, (start, end) in enumerate(spans, start=1):
        color = colors[(number - 1) % len(colors)]
        out.append(html.escape(text[last:start]))
        out.append(f'<span class="tag" style="{TAG_STYLE}background:{color}">{number}</span>{html.escape(text[start:end])}')
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out)


def picture_tag(picture: Path | None, alt: str) -> str:
    if picture is None or not picture.is_file():
        return "<p><em>no picture (image missing)</em></p>"
    data = base64.b64encode(picture.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _coords(box: Sequence[float] | None) -> str:
    return "-" if box is None else "[" + ", ".join(f"{v:g}" for v in box) + "]"


def kinds_html(kinds: Sequence[str]) -> str:
    return "".join(f'<span class="kind">{html.escape(k)}</span>' for k in kinds) if kinds else '<span class="ok">ok</span>'


def completion_block(record: dict[str, Any]) -> str:
    """The reasoning with numbered boxes, the answer, and the list of boxes with their coordinates."""
    completion = record.get("completion")
    if completion is None:
        return "<pre>(no completion)</pre>"
    spans = [(start - 1 if start and completion[start - 1] in "[(" else start, end)  # the tag before a bracket
             for start, end in (b.span for b in parse_paper_boxes(completion))]
    answer = answer_text(completion)
    boxes = "".join(
        f'<tr><td><span class="tag">{i}</span></td><td>{html.escape(str(b.get("section")))}</td>'
        f'<td>{_coords(b.get("box"))}</td><td>{_coords(b.get("original"))}</td></tr>'
        for i, b in enumerate(record.get("paper_boxes") or [], start=1)
    )
    box_table = (f'<table class="boxes"><tr><th>#</th><th>section</th><th>as written (model frame)</th>'
                 f'<th>image pixels</th></tr>{boxes}</table>' if boxes else "<p>No boxes in the completion.</p>")
    return (f'<p><b>Reasoning</b> (numbers in front of boxes match the picture):</p>'
            f'<pre class="completion">{boxes_html(completion, spans)}</pre>'
            f"<p><b>Answer:</b> {html.escape(answer) if answer is not None else '(no &lt;answer&gt;)'}</p>{box_table}")


def _sample_block(record: dict[str, Any], picture: Path | None, turns: list[Path | None] | None = None) -> str:
    kinds = failure_kinds(record)
    m = record["metrics"]
    scores = ", ".join(f"{k}={_fmt(m.get(k))}" for k in ("acc", "giou", "giou_paper", "ovd_precision", "format", "num_boxes"))
    rewards = ", ".join(f"{html.escape(k)}={_fmt(v)}" for k, v in record["rewards"].items())
    lines = [
        f"<h3>#{record['index']} &middot; {html.escape(record['dataset'])} {kinds_html(kinds)}</h3>",
        f"<p><b>Question:</b> {html.escape(record['question'])}</p>",
        f"<p><b>Ground truth:</b> {html.escape(record['answer'])}</p>",
        completion_block(record),
        zoom_html(record, turns or [], picture_tag),  # "" without zoom turns
        f"<p><b>Scores:</b> {scores}; <b>reward</b>={_fmt(record['reward'])} ({rewards})</p>",
        f"<p><b>Judge:</b> {_fmt(record['judge_raw'])}" + (" <b>(failed)</b>" if record["judge_failure"] else "") + "</p>",
        f"<p><b>Image:</b> <code>{html.escape(str(record['image']))}</code></p>",
    ]
    consistency = record.get("consistency")
    if consistency is not None and consistency.get("trials"):
        picks = "; ".join(
            f"repeat {t['repeat']}: {'failed' if t['failed'] else ('model image' if t['correct'] else 'random image')}"
            for t in consistency["trials"]
        )
        lines.append(f"<p><b>Consistency:</b> {html.escape(picks)}</p>")
    if record["errors"]:
        lines.append(f"<p><b>Errors:</b> {html.escape('; '.join(record['errors']))}</p>")
    state = "failed" if kinds else "ok"
    index = record["index"]
    return (f'<div class="sample {state}" id="sample-{index}"><div>{picture_tag(picture, f"sample {index}")}'
            f'</div><div class="text">{"".join(lines)}</div></div>')


def failure_order(record: dict[str, Any]) -> tuple[int, int]:
    """Sort key: the most basic failure first (missing image, judge failure, no boxes, wrong answer), then ok."""
    kinds = failure_kinds(record)
    return (min((FAILURE_KINDS.index(k) for k in kinds), default=len(FAILURE_KINDS)), record["index"])


def failure_list(records: Sequence[dict[str, Any]], pictured: set[int]) -> str:
    failed = sorted((r for r in records if failure_kinds(r)), key=failure_order)
    counts = {k: sum(1 for r in failed if k in failure_kinds(r)) for k in FAILURE_KINDS}
    head = (f"<h2>Failures: {len(failed)} of {len(records)} samples</h2><p>"
            + ", ".join(f"{html.escape(k)}: {v}" for k, v in counts.items()) + "</p>")
    if not failed:
        return head
    rows = []
    for r in failed:
        index = f'<a href="#sample-{r["index"]}">#{r["index"]}</a>' if r["index"] in pictured else f"#{r['index']}"
        answer = answer_text(r["completion"]) if r.get("completion") else None
        rows.append(f"<tr><td>{index}</td><td>{html.escape(r['dataset'])}</td><td>{kinds_html(failure_kinds(r))}</td>"
                    f"<td><code>{html.escape(str(r['image']))}</code></td><td>{html.escape(r['question'])}</td>"
                    f"<td>{html.escape(r['answer'])}</td><td>{html.escape(answer) if answer is not None else '-'}</td></tr>")
    return (head + '<table class="failures"><tr><th>sample</th><th>dataset</th><th>what went wrong</th>'
            "<th>image file</th><th>question</th><th>ground truth</th><th>answer given</th></tr>" + "".join(rows) + "</table>")


def run_line(meta: dict[str, Any]) -> str:
    keys = ("model", "checkpoint", "prompt", "judge", "judge_preset", "judged_answer", "untagged_answer", "decoding", "step")
    shown = [f"{k} <b>{html.escape(str(meta[k]))}</b>" for k in keys if meta.get(k) is not None]
    return f"<p class=\"run\">Answers judged by <b>{html.escape(str(meta.get('judge')))}</b>; " + ", ".join(shown) + \
        f", {meta.get('num_processes')} process(es).</p>"


def write_report(out_dir: Path, metrics: dict[str, Any], pictured: list[tuple[dict[str, Any], Path | None]],
                 records: Sequence[dict[str, Any]] | None = None,
                 turn_pictures: dict[int, list[Path | None]] | None = None) -> Path:
    """Write `out_dir/report.html` from the metrics, all sample `records` (for the failure list; the
    pictured ones when not given) and the pictured (record, picture path) pairs; with zoom turns,
    `turn_pictures` (sample index -> one picture per call) and a zoom table."""
    turn_pictures = turn_pictures or {}
    meta = metrics.get("_meta", {})
    records = list(records) if records is not None else [r for r, _ in pictured]
    shown = sorted(pictured, key=lambda pair: failure_order(pair[0]))
    body = [
        "<h1>grit-exp evaluation</h1>",
        run_line(meta),
        "<h2>Summary</h2>",
        summary_table(metrics),
        failure_list(records, {r["index"] for r, _ in pictured}),
        f"<h2>Samples: {len(shown)} pictured, failures first</h2>",
        '<p class="legend">In the pictures: <span style="color:#00c800">ground truth</span>, '
        '<span style="color:#1e5aff">answer box</span>, <span style="color:#e61414">model boxes, numbered as in '
        "the text</span> (the legend is also inside each picture).</p>",
        zoom_table(metrics),  # "" without zoom turns
        *(_sample_block(record, picture, turn_pictures.get(record["index"])) for record, picture in shown),
        "<details><summary>All metrics and run metadata</summary>",
        all_metrics_table(metrics),
        f"<pre>{html.escape(json.dumps(meta, indent=2, sort_keys=True))}</pre></details>",
    ]
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>grit-exp evaluation</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
