"""The sweep summary: `<sweep dir>/sweep_summary.json` and `sweep_summary.md`, one entry per job.

Each entry: the job's number and overrides, its status ("completed" or "failed", with the error in
one line), how often SLURM requeued it, its run directory, its SLURM job id, and its final metrics:
the last evaluation's `eval/<dataset>/<metric>` values and the last `train/reward` from
`<run>/metrics.jsonl`. Built by the sweeper (hydra_plugins.grit_exp_sweep) from the launcher's job
returns and each run's `sweep_job.json`; read back by `python -m grit_exp.report <sweep dir>`.
Left out: running jobs, and Table 1 (grit_exp.reporting reads the same run directories for it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_JSON = "sweep_summary.json"
SUMMARY_MD = "sweep_summary.md"
# metrics shown as columns of the Markdown table, in this order (all of them are in the JSON)
SHOWN_METRICS = ("reward", "acc", "giou")
STATUSES = ("completed", "failed")


@dataclass
class SweepJob:
    num: int
    overrides: list[str]
    status: str  # one of STATUSES
    run_dir: str
    error: str | None = None
    requeues: int = 0
    slurm_job_id: str | None = None
    final_step: int | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def status_text(self) -> str:
        """"completed", "failed", "completed after 2 requeues", ..."""
        if not self.requeues:
            return self.status
        return f"{self.status} after {self.requeues} requeue{'s' if self.requeues > 1 else ''}"


def final_metrics(run_dir: Path) -> tuple[int | None, dict[str, float | None]]:
    """(step, metrics) of a run's last evaluation in metrics.jsonl, with the last train/reward added.

    Unreadable lines are skipped (a job killed mid-write leaves a partial last line)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None, {}
    last_eval: dict[str, Any] = {}
    last_reward: float | None = None
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if any(k.startswith("eval/") for k in record):
            last_eval = record
        if record.get("train/reward") is not None:
            last_reward = record["train/reward"]
    metrics = {k: v for k, v in last_eval.items() if k.startswith("eval/")}
    if last_reward is not None:
        metrics["train/reward"] = last_reward
    return last_eval.get("step"), metrics


def write_summary(sweep_dir: Path, jobs: list[SweepJob], launcher: str) -> dict[str, Any]:
    """Write sweep_summary.json and sweep_summary.md into `sweep_dir`; returns the JSON content."""
    jobs = sorted(jobs, key=lambda j: j.num)
    counts = {s: sum(1 for j in jobs if j.status == s) for s in STATUSES}
    summary = {
        "sweep_dir": str(sweep_dir),
        "launcher": launcher,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "counts": {**counts, "requeued": sum(1 for j in jobs if j.requeues)},
        "jobs": [{**asdict(j), "status_text": j.status_text} for j in jobs],
    }
    _atomic_write(sweep_dir / SUMMARY_JSON, json.dumps(summary, indent=1) + "\n")
    _atomic_write(sweep_dir / SUMMARY_MD, render_markdown(summary))
    return summary


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_summary(sweep_dir: Path) -> dict[str, Any]:
    """The sweep_summary.json of `sweep_dir` (ValueError naming the file when it is not valid)."""
    path = sweep_dir / SUMMARY_JSON
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise ValueError(f"{path}: expected an object with a 'jobs' list")
    return data


def _shown_columns(jobs: list[dict[str, Any]]) -> list[str]:
    keys = {k for j in jobs for k in (j.get("metrics") or {})}
    evals = sorted(k for k in keys if k.count("/") == 2 and k.rsplit("/", 1)[-1] in SHOWN_METRICS)
    evals.sort(key=lambda k: (k.split("/")[1], SHOWN_METRICS.index(k.rsplit("/", 1)[-1])))
    return evals + (["train/reward"] if "train/reward" in keys else [])


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def render_markdown(summary: dict[str, Any]) -> str:
    """The summary as a Markdown table (one row per job; overrides shared by every job said once above
    it) followed by the failed jobs' errors."""
    jobs = summary["jobs"]
    columns = _shown_columns(jobs)
    counts = summary.get("counts", {})
    common = [o for o in jobs[0]["overrides"] if all(o in j["overrides"] for j in jobs)] if len(jobs) > 1 else []
    lines = [
        f"# Sweep {summary.get('sweep_dir', '')}",
        "",
        f"{len(jobs)} jobs ({summary.get('launcher', '?')} launcher): {counts.get('completed', 0)} completed, "
        f"{counts.get('failed', 0)} failed, {counts.get('requeued', 0)} requeued at least once.",
        "",
        *([f"Overrides of every job: `{' '.join(common)}`", ""] if common else []),
        "| # | overrides | status | SLURM job | run dir | step | " + " | ".join(columns) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(columns),
    ]
    for j in jobs:
        metrics = j.get("metrics") or {}
        own = [o for o in j["overrides"] if o not in common]
        cells = [str(j["num"]), " ".join(own) or "(none)", j.get("status_text", j["status"]),
                 j.get("slurm_job_id") or "-", j["run_dir"], _cell(j.get("final_step"))]
        cells += [_cell(metrics.get(c)) for c in columns]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    failed = [j for j in jobs if j["status"] == "failed"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        lines += [f"- #{j['num']} ({' '.join(o for o in j['overrides'] if o not in common) or 'no own overrides'}): "
                  f"{j.get('error') or 'no error recorded'}" for j in failed]
    return "\n".join(lines) + "\n"
