"""What a sweep job records about itself in its run directory, and its W&B identity.

`SweepJobRecorder` (a Hydra callback, registered in conf/train.yaml) writes `<run>/sweep_job.json`
in every job of a multirun: the job's number and overrides, its SLURM job id, how often SLURM has
requeued it (SLURM_RESTART_COUNT), one entry per attempt, and at the end the status and error. Only
the task of rank 0 writes. The sweep summary reads it; nothing else does. A job killed before its
end keeps status "running" there; the sweeper then takes the status from the launcher.

`wandb_identity` gives a run's W&B name and group: inside a sweep, named after the job's overrides
and grouped by the sweep directory. Left out: the W&B run id (training.logger keeps it in the run).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

RECORD_FILE = "sweep_job.json"


def slurm_job_id(environ: dict[str, str] | os._Environ = os.environ) -> str | None:
    """"<array job>_<task>" inside an array job (as squeue shows it), else SLURM_JOB_ID; None outside SLURM."""
    if environ.get("SLURM_ARRAY_JOB_ID") and environ.get("SLURM_ARRAY_TASK_ID"):
        return f"{environ['SLURM_ARRAY_JOB_ID']}_{environ['SLURM_ARRAY_TASK_ID']}"
    return environ.get("SLURM_JOB_ID")


def _is_rank_zero() -> bool:
    return os.environ.get("SLURM_PROCID", "0") == "0" and os.environ.get("RANK", "0") == "0"


def _in_multirun(config: DictConfig) -> bool:
    return config.hydra.mode == RunMode.MULTIRUN


def read_job_record(run_dir: Path) -> dict[str, Any]:
    """The run's sweep_job.json ({} when absent or unreadable: the summary then relies on the launcher)."""
    try:
        data = json.loads((run_dir / RECORD_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(run_dir: Path, record: dict[str, Any]) -> None:
    tmp = run_dir / f".{RECORD_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, run_dir / RECORD_FILE)


class SweepJobRecorder(Callback):
    """Hydra callback: `<run>/sweep_job.json` for each job of a multirun (see the module docstring)."""

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not _in_multirun(config) or not _is_rank_zero():
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        record = read_job_record(run_dir)
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        record.update(
            num=int(config.hydra.job.num),
            overrides=list(config.hydra.overrides.task),
            slurm_job_id=slurm_job_id(),
            requeues=restarts,
            status="running",
            error=None,
        )
        record.setdefault("attempts", []).append(
            {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "slurm_restart_count": restarts}
        )
        _write(run_dir, record)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if not _in_multirun(config) or not _is_rank_zero():
            return
        run_dir = Path(config.hydra.runtime.output_dir)
        record = read_job_record(run_dir)
        failed = job_return.status == JobStatus.FAILED
        record.update(status="failed" if failed else "completed",
                      error=describe_error(job_return._return_value) if failed else None)
        _write(run_dir, record)


def finish_job_record(run_dir: Path, status: str, error: str | None) -> None:
    """Set the final status of an existing record (the sweeper's view of a job that died before its end)."""
    record = read_job_record(run_dir)
    if record:
        record.update(status=status, error=error)
        _write(run_dir, record)


def describe_error(error: BaseException) -> str:
    """One line: the exception's type and message (GritError: the message alone, it names the key)."""
    from grit_exp.errors import GritError, one_line

    text = one_line(str(error)) or type(error).__name__
    return text if isinstance(error, GritError) else f"{type(error).__name__}: {text}"


def wandb_identity() -> dict[str, str]:
    """{"name", "group"} for W&B inside a multirun job (named after its overrides, grouped by the sweep
    directory, e.g. "multirun/2025-06-01/10-00-00" -> "2025-06-01/10-00-00"); {} otherwise."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {}
    name = hydra_cfg.job.override_dirname or f"job{hydra_cfg.job.num}"
    group = "/".join(Path(str(hydra_cfg.sweep.dir)).parts[-2:])
    return {"name": name, "group": group}
