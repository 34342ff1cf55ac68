"""hydra-submitit-launcher's SLURM launcher, made to survive a dead job and to place one task per GPU.

Unchanged from the plugin: one SLURM job per sweep point (a job array, `array_parallelism` at a time),
each job running the task function in every task, and requeue on preemption or time-out: submitit
catches the signal SLURM sends `signal_delay_s` before the end, pickles the launcher call again
(`checkpoint`), runs `scontrol requeue`, and the job starts over; training resumes from the newest
complete checkpoint in its own run directory (`trainer.resume=auto`).

Changed: the plugin waits with `job.results()` and raises on the first job that produced no result
(killed, out of memory, exited), losing every other point. Here such a job becomes a failed point
(`JobDied`, with SLURM's reason and its last error line) and the others are still collected, also
where `sacct` does not work (`wait_for_jobs`); every job return also carries its SLURM job id. `tasks_per_node: 0` means one task per GPU (1 on CPU
nodes), and `gpus_per_node: 0` requests no GPUs at all.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import OmegaConf

from grit_exp.cluster.sweep import silence_launcher_schema_warning

log = logging.getLogger(__name__)
silence_launcher_schema_warning()  # this module is imported again inside every job, when submitit unpickles it
# SLURM states of a job that will not run again (a requeued job passes through REQUEUED/PENDING instead)
ENDED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                "ENDED"}
RESULT_GRACE_S = 10.0


class JobDied(RuntimeError):
    """A SLURM job ended without returning a result (killed, out of memory, exited early)."""


class TolerantSlurmLauncher(SlurmLauncher):
    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        gpus = int(self.params.get("gpus_per_node") or 0)
        if not self.params.get("tasks_per_node"):
            self.params["tasks_per_node"] = max(1, gpus)
        self.params["gpus_per_node"] = gpus or None  # CPU tasks: no --gpus-per-node at all
        self.params["setup"] = list(self.params.get("setup") or []) or None

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit  # lazy: Hydra imports plugins at every start-up

        assert self.config is not None
        params = dict(self.params)
        executor = submitit.AutoExecutor(
            cluster="slurm", folder=params.pop("submitit_folder"), slurm_max_num_timeout=params.pop("max_num_timeout")
        )
        generic = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in generic else f"slurm_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

        state = Singleton.get_state()
        calls = [(list(o), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}", state)
                 for i, o in enumerate(job_overrides)]
        jobs = executor.map_array(self, *zip(*calls, strict=True))
        for (overrides, _, num, _, _), job in zip(calls, jobs, strict=True):
            log.info("\t#%d : SLURM job %s : %s", num, job.job_id, " ".join(filter_overrides(overrides)))
        ended = wait_for_jobs(jobs)
        results = []
        for (overrides, *_), job in zip(calls, jobs, strict=True):
            try:
                if job.job_id in ended:
                    raise JobDied(f"ended in state {ended[job.job_id]}")
                ret = job.results()[0]  # task 0's JobReturn (every task runs the same job)
            except Exception as error:  # noqa: BLE001  (submitit's UncompletedJobError / FailedJobError)
                ret = JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=_died(job, error))
            ret.slurm_job_id = job.job_id  # type: ignore[attr-defined]  (read by the sweep summary)
            results.append(ret)
        return results


def wait_for_jobs(jobs: Sequence[Any], poll_s: float = 2.0) -> dict[str, str]:
    """Wait until every job has a result or has ended without one; returns {job id: SLURM state} of the latter.

    submitit learns that a job ended from `sacct`; where accounting is off (sacct fails) a job that
    died stays "UNKNOWN" to it and `results()` would wait forever. `scontrol show job` knows the
    state of a finished job for MinJobAge seconds (default 300), which is enough here. A job that
    SLURM reports ended gets RESULT_GRACE_S more for its result file to appear (shared filesystems)."""
    ended: dict[str, str] = {}
    first_seen_ended: dict[str, float] = {}
    waiting = list(jobs)
    while waiting:
        still = []
        for job in waiting:
            if job.paths.result_pickle.exists() or job.done():
                continue
            state = _scontrol_state(job.job_id)
            if state in ENDED_STATES:
                first = first_seen_ended.setdefault(job.job_id, time.monotonic())
                if time.monotonic() - first >= RESULT_GRACE_S:
                    ended[job.job_id] = state
                    continue
            still.append(job)
        waiting = still
        if waiting:
            time.sleep(poll_s)
    return ended


def _scontrol_state(job_id: str) -> str | None:
    """The job's JobState from `scontrol show job` ("ENDED" once SLURM has forgotten it; None if unknown)."""
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return "ENDED" if "Invalid job id" in out.stderr else None
    match = re.search(r"\bJobState=(\S+)", out.stdout)
    return match.group(1) if match else None


def _died(job: Any, error: Exception) -> JobDied:
    stderr = ""
    try:
        stderr = job.stderr() or ""
    except Exception:  # noqa: BLE001  (the log may not exist when the job never started)
        pass
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    how = str(error) if isinstance(error, JobDied) else type(error).__name__
    last = f": {(errors or lines)[-1]}" if lines else ""
    return JobDied(f"SLURM job {job.job_id} {how} without a result{last}")
