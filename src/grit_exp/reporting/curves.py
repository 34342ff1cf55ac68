"""Reward and metric curves from runs' `metrics.jsonl` (matplotlib, Agg backend, PNG files).

Per run, one figure of four panels: the training reward and each reward term, the KL to the
reference model, and the greedy evaluation's ACC and GIoU per dataset over steps. Across runs, one
overlay figure of a chosen key (default `train/reward`). Panels without data say so instead of being
left empty. Left out: reading results (`collect.py`) and tables (`table1.py`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grit_exp.reporting.collect import read_curve_records

log = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key`, skipping records without it or with a null value."""
    pts = [(int(r["step"]), float(r[key])) for r in records if r.get(key) is not None]
    return ([s for s, _ in pts], [v for _, v in pts]) if pts else ([], [])


def _keys(records: Sequence[dict[str, Any]], pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return sorted({k for r in records for k in r if regex.fullmatch(k)})


def _panel(ax: Any, records: Sequence[dict[str, Any]], keys: list[str], title: str, marker: str | None = None) -> None:
    drawn = 0
    for key in keys:
        steps, values = series(records, key)
        if steps:
            ax.plot(steps, values, marker=marker, label=key, linewidth=1.2)
            drawn += 1
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=6)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")


def plot_run_curves(run_dir: Path, out: Path, records: Sequence[dict[str, Any]] | None = None) -> Path | None:
    """Write the four-panel figure of one run to `out`; None (nothing written) when it has no metrics.jsonl."""
    records = read_curve_records(run_dir) if records is None else records
    if not records:
        log.info("%s: no metrics.jsonl records, no curves", run_dir)
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    _panel(axes[0][0], records, _keys(records, r"train/reward(/.+)?"), "training reward (sampled) and its terms")
    _panel(axes[0][1], records, _keys(records, r"train/kl"), "KL to the reference")
    _panel(axes[1][0], records, _keys(records, r"eval/[^/]+/acc"), "eval ACC (greedy, raw judge score)", marker="o")
    _panel(axes[1][1], records, _keys(records, r"eval/[^/]+/giou(_paper)?"), "eval GIoU (greedy)", marker="o")
    fig.suptitle(str(run_dir), fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_overlay(run_dirs: Sequence[Path], out: Path, key: str = "train/reward", labels: Sequence[str] | None = None) -> Path | None:
    """`key` of several runs on one axis; None (nothing written) when no run logged it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    drawn = 0
    for i, run in enumerate(run_dirs):
        steps, values = series(read_curve_records(run), key)
        if steps:
            ax.plot(steps, values, label=labels[i] if labels else "/".join(run.resolve().parts[-2:]), linewidth=1.2)
            drawn += 1
    if not drawn:
        plt.close(fig)
        log.info("no run logged %s; no overlay", key)
        return None
    ax.set_title(key, fontsize=9)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def curve_file_name(run_dir: Path) -> str:
    """A file name for a run's figure that stays unique across date/time and multirun folders."""
    parts = run_dir.resolve().parts[-3:]
    return "curves_" + "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", p) for p in parts) + ".png"


def plot_all(run_dirs: Sequence[Path], out_dir: Path, overlay_key: str = "train/reward") -> list[Path]:
    """One figure per run with curves, plus an overlay of `overlay_key` when there are two or more runs."""
    written = [p for run in run_dirs if (p := plot_run_curves(run, out_dir / curve_file_name(run))) is not None]
    if len(run_dirs) > 1:
        overlay = plot_overlay(run_dirs, out_dir / "curves_overlay.png", overlay_key)
        if overlay is not None:
            written.append(overlay)
    return written
