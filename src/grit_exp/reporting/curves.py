"""Reward and metric curves from runs' `metrics.jsonl` (matplotlib, Agg backend, PNG files).

`plot_reward_curve` draws a training run's `reward_curve.png`: the training reward per step with
its moving average, then one panel per evaluation metric (reward, acc, giou, format) with every
dataset greedy (`eval/<ds>/<m>`, solid, filled markers) and sampled (`eval/<ds>/<m>_sampled`,
dashed, hollow markers) when logged; the warm-start level (the step-0 evaluation) as a dotted
reference line per series, and the untrained model (`init/...`) as a cross at step 0. Steps are
integer ticks; every series has its own (colour, marker, line style) and a small x offset, so no
series hides under another. For the report CLI: per run, four panels (reward terms, KL, ACC, GIoU);
across runs, an overlay of one key. Panels without data say so instead of being left empty.
Left out: reading results (`collect.py`) and tables (`table1.py`).
"""

from __future__ import annotations

import logging
import math
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


def _integer_steps(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


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
    _integer_steps(ax)
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
    _integer_steps(ax)
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


# ----------------------------------------------------------------------------------- reward_curve.png

EVAL_CURVE_METRICS = ("reward", "acc", "giou", "format")
METRIC_MEANINGS = {
    "reward": "reward of the preset (the GRPO objective)",
    "acc": "answer accuracy (judge score)",
    "giou": "grounding IoU of the boxes (exact frame)",
    "format": "fraction in <think>/<rethink>/<answer> form",
}
DATASET_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MOVING_AVERAGE_STEPS = 5


def moving_average(values: Sequence[float], window: int = MOVING_AVERAGE_STEPS) -> list[float]:
    """Trailing mean over the last `window` values (fewer at the start)."""
    out = []
    for i in range(len(values)):
        part = values[max(0, i - window + 1) : i + 1]
        out.append(sum(part) / len(part))
    return out


def eval_datasets(records: Sequence[dict[str, Any]]) -> list[str]:
    """Datasets with `eval/<dataset>/<metric>` keys, in order of first appearance."""
    names: dict[str, None] = {}
    for record in records:
        for key in record:
            parts = key.split("/")
            if len(parts) == 3 and parts[0] == "eval":
                names.setdefault(parts[1])
    return list(names)


def _first_value(records: Sequence[dict[str, Any]], key: str, step: int = 0) -> float | None:
    return next((float(r[key]) for r in records if r.get("step") == step and r.get(key) is not None), None)


def _eval_panel(ax: Any, records: Sequence[dict[str, Any]], metric: str, datasets: list[str], warm_start: bool) -> int:
    """Greedy and sampled series of `metric` per dataset, step-0 reference lines, untrained crosses."""
    plt = _pyplot()
    colors = plt.get_cmap("tab10").colors
    variants = [(d, sampled) for d in datasets for sampled in (False, True)
                if series(records, f"eval/{d}/{metric}{'_sampled' if sampled else ''}")[0]]
    steps_all = sorted({int(r["step"]) for r in records})
    span = (steps_all[-1] - steps_all[0]) if len(steps_all) > 1 else 1
    offset_unit = 0.012 * span if len(variants) > 1 else 0.0
    reference_label = "warm start (step-0 eval)" if warm_start else "step-0 eval"
    for i, (dataset, sampled) in enumerate(variants):
        key = f"eval/{dataset}/{metric}{'_sampled' if sampled else ''}"
        steps, values = series(records, key)
        k = datasets.index(dataset)
        color, marker = colors[k % len(colors)], DATASET_MARKERS[k % len(DATASET_MARKERS)]
        shift = (i - (len(variants) - 1) / 2) * offset_unit
        below = min(3, len(variants) - 1 - i)  # series drawn first are wider, so equal values show as a band
        ax.plot([s + shift for s in steps], values, color=color, marker=marker, markersize=5 + 2 * below,
                linestyle="--" if sampled else "-", markerfacecolor="white" if sampled else color,
                linewidth=1.2 + 1.5 * below, alpha=0.9, zorder=2 + i,
                label=f"{dataset} {'sampled' if sampled else 'greedy'}")
        start = _first_value(records, key)
        if start is not None:
            ax.axhline(start, color=color, linestyle=":", linewidth=1.0, alpha=0.8)
        untrained = _first_value(records, "init/" + key.removeprefix("eval/"))
        if untrained is not None:
            ax.plot([shift], [untrained], marker="x", markersize=8, color=color, linestyle="none")
    if variants:
        ax.plot([], [], color="grey", linestyle=":", label=f"{reference_label}, per series")
        if any(k.startswith("init/") and k.endswith(f"/{metric}") for r in records for k in r):
            ax.plot([], [], color="grey", marker="x", linestyle="none", label="untrained model")
        ax.legend(fontsize=6, loc="best")
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_title(f"eval {metric}: {METRIC_MEANINGS.get(metric, metric)}", fontsize=9)
    return len(variants)


def reward_curve_figure(records: Sequence[dict[str, Any]], window: int = MOVING_AVERAGE_STEPS) -> Any:
    """The figure of `reward_curve.png` (see the module docstring); the caller saves and closes it."""
    plt = _pyplot()
    datasets = eval_datasets(records)
    metrics = [m for m in EVAL_CURVE_METRICS
               if any(series(records, f"eval/{d}/{m}{s}")[0] for d in datasets for s in ("", "_sampled"))]
    panels = 1 + len(metrics)
    cols = 2 if panels > 1 else 1
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 3.8 * rows), squeeze=False)
    flat_axes = [ax for row in axes for ax in row]
    warm_start = any(k.startswith("init/") for r in records for k in r)

    ax = flat_axes[0]
    steps, values = series(records, "train/reward")
    if steps:
        ax.plot(steps, values, color="tab:blue", alpha=0.35, linewidth=1.0, marker=".", label="train reward (sampled, per step)")
        ax.plot(steps, moving_average(values, window), color="tab:blue", linewidth=2.0,
                label=f"moving average ({window} steps)")
        ax.legend(fontsize=6, loc="best")
    else:
        ax.text(0.5, 0.5, "no training steps logged", ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_title("training reward (sampled completions of training prompts)", fontsize=9)
    for ax, metric in zip(flat_axes[1:], metrics, strict=False):
        _eval_panel(ax, records, metric, datasets, warm_start)
    for ax in flat_axes[panels:]:
        ax.set_visible(False)
    for ax in flat_axes[:panels]:
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
        _integer_steps(ax)
    fig.suptitle("solid/filled: greedy eval; dashed/hollow: sampled eval; dotted: step-0 level; "
                 "series offset slightly along x so none hides another", fontsize=8)
    fig.tight_layout()
    return fig


def plot_reward_curve(records: Sequence[dict[str, Any]], out: Path, window: int = MOVING_AVERAGE_STEPS) -> Path:
    """Write `reward_curve.png` of one training run's metrics.jsonl records to `out`."""
    plt = _pyplot()
    fig = reward_curve_figure(records, window)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
