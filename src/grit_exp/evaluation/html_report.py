"""report.html: one self-contained page with the metrics table and the pictured samples.

Each pictured sample shows its picture (embedded as a PNG data URL, so the page stands alone) next
to the question, the ground truth, the reasoning text, the extracted answer, the judge's verdict
and the scores. Every piece of text from data or models is HTML-escaped. Metrics that are not
numbers (the consistency metric without a vision judge) are shown as the text they hold.

Left out: drawing (`pictures.py`), tables across runs (`grit_exp.report`).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from grit_exp.rewards.answer_terms import answer_text

TABLE_KEYS = (
    "n", "n_scored", "missing_images", "acc", "n_judged", "judge_failures", "giou", "giou_paper", "ovd_map",
    "ovd_map_paper", "format", "mean_boxes", "mean_completion_tokens", "reward", "consistency",
)

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #bbb; padding: 3px 7px; text-align: right; font-size: 0.9em; }
th { background: #eee; }
.sample { display: flex; gap: 1.5em; border-top: 1px solid #ccc; padding: 1em 0; }
.sample img { max-width: 520px; height: auto; border: 1px solid #999; }
.text { flex: 1; min-width: 0; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f6f6; padding: 0.5em; }
.legend span { padding: 0 0.4em; }
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


def _metrics_table(metrics: dict[str, Any]) -> str:
    datasets = [name for name in metrics if not name.startswith("_")]
    keys = [k for k in TABLE_KEYS if any(k in metrics[d] for d in datasets)]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    rows = []
    for name in datasets:
        cells = "".join(f"<td>{_fmt(metrics[name].get(k))}</td>" for k in keys)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th>dataset</th>{head}</tr>{''.join(rows)}</table>"


def _sample_block(record: dict[str, Any], picture: Path | None) -> str:
    if picture is not None and picture.is_file():
        data = base64.b64encode(picture.read_bytes()).decode()
        image = f'<img src="data:image/png;base64,{data}" alt="sample {record["index"]}">'
    else:
        image = "<p><em>no picture (image missing)</em></p>"
    completion = record["completion"]
    answer = answer_text(completion) if completion is not None else None
    m = record["metrics"]
    scores = ", ".join(f"{k}={_fmt(m.get(k))}" for k in ("acc", "giou", "giou_paper", "ovd_precision", "format", "num_boxes"))
    rewards = ", ".join(f"{html.escape(k)}={_fmt(v)}" for k, v in record["rewards"].items())
    consistency = record.get("consistency")
    lines = [
        f"<h3>#{record['index']} &middot; {html.escape(record['dataset'])}</h3>",
        f"<p><b>Question:</b> {html.escape(record['question'])}</p>",
        f"<p><b>Ground truth:</b> {html.escape(record['answer'])}</p>",
        "<p><b>Completion (reasoning):</b></p>",
        f"<pre>{html.escape(completion) if completion is not None else '(none)'}</pre>",
        f"<p><b>Answer:</b> {html.escape(answer) if answer is not None else '(no &lt;answer&gt;)'}</p>",
        f"<p><b>Scores:</b> {scores}; <b>reward</b>={_fmt(record['reward'])} ({rewards})</p>",
        f"<p><b>Judge:</b> {_fmt(record['judge_raw'])}"
        + (" <b>(failed)</b>" if record["judge_failure"] else "") + "</p>",
    ]
    if consistency is not None and consistency.get("trials"):
        picks = "; ".join(
            f"repeat {t['repeat']}: {'failed' if t['failed'] else ('model image' if t['correct'] else 'random image')}"
            for t in consistency["trials"]
        )
        lines.append(f"<p><b>Consistency:</b> {html.escape(picks)}</p>")
    if record["errors"]:
        lines.append(f"<p><b>Errors:</b> {html.escape('; '.join(record['errors']))}</p>")
    return f'<div class="sample"><div>{image}</div><div class="text">{"".join(lines)}</div></div>'


def write_report(out_dir: Path, metrics: dict[str, Any], pictured: list[tuple[dict[str, Any], Path | None]]) -> Path:
    """Write `out_dir/report.html` from the metrics and the pictured (record, picture path) pairs."""
    meta = metrics.get("_meta", {})
    body = [
        "<h1>grit-exp evaluation</h1>",
        "<p>Answers judged by <b>{}</b>; model <b>{}</b>, prompt <b>{}</b>, decoding <b>{}</b>, {} process(es).</p>".format(
            *(html.escape(str(meta.get(k))) for k in ("judge", "model", "prompt", "decoding", "num_processes"))
        ),
        f"<pre>{html.escape(json.dumps(meta, indent=2, sort_keys=True))}</pre>",
        _metrics_table(metrics),
        '<p class="legend">Boxes: <span style="color:#00c800">ground truth</span>'
        '<span style="color:#1e5aff">OVD answer box</span><span style="color:#e61414">model</span></p>',
        *(_sample_block(record, picture) for record, picture in pictured),
    ]
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>grit-exp evaluation</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
