"""Hydra's basic sweeper, except that every point runs whatever happens to the others, and the sweep
ends with `<sweep dir>/sweep_summary.{json,md}` (grit_exp.cluster.sweep.summary), also logged.

Why not a callback's `on_multirun_end`: Hydra's BasicSweeper re-raises the first failed job right
after its batch, so `on_multirun_end` never runs for a sweep with a failure, which is the sweep whose
summary matters most. Here the failures are collected, the summary written, and then one error says
how many points failed (so the command still exits non-zero). Jobs that run in this process (Hydra's
basic launcher) are launched one at a time, so that a job ending the process (SystemExit) fails
alone. Sweep syntax, `hydra.sweeper.params` and `max_batch_size` are the basic sweeper's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf, open_dict

log = logging.getLogger(__name__)


class SweepFailed(RuntimeError):
    """Some points of the sweep failed; the message says how many and where the summary is."""


class SummarizingSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        params = self._parse_config()
        params.extend(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        self.overrides = self.split_arguments(parser.parse_overrides(params), self.max_batch_size)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        returns: list[Sequence[JobReturn]] = []
        jobs: list[tuple[int, list[str], JobReturn]] = []
        first = 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self._launch(batch, first)
            returns.append(results)
            jobs += [(first + i, list(o), r) for i, (o, r) in enumerate(zip(batch, results, strict=True))]
            first += len(batch)
        self._summarize(sweep_dir, jobs)
        return returns

    def _launch(self, batch: Sequence[Sequence[str]], first: int) -> list[JobReturn]:
        assert self.launcher is not None
        if not isinstance(self.launcher, BasicLauncher):
            return list(self.launcher.launch(batch, initial_job_idx=first))  # e.g. a SLURM job array
        results = []
        for i, overrides in enumerate(batch):
            try:
                results += self.launcher.launch([overrides], initial_job_idx=first + i)
            except (Exception, SystemExit) as error:  # a job that ended the process: it alone fails
                results.append(JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error))
        return results

    def _run_dir(self, num: int, overrides: list[str], ret: JobReturn) -> Path:
        if ret.hydra_cfg is not None:
            return Path(str(ret.hydra_cfg.hydra.runtime.output_dir))
        assert self.hydra_context is not None and self.config is not None
        job_cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(job_cfg):
            job_cfg.hydra.job.num = num
        return Path(str(job_cfg.hydra.sweep.dir)) / str(job_cfg.hydra.sweep.subdir)

    def _summarize(self, sweep_dir: Path, jobs: list[tuple[int, list[str], JobReturn]]) -> None:
        from grit_exp.cluster.sweep.job_record import describe_error, finish_job_record, read_job_record
        from grit_exp.cluster.sweep.summary import SweepJob, final_metrics, render_markdown, write_summary

        entries = []
        for num, overrides, ret in jobs:
            run_dir = self._run_dir(num, overrides, ret)
            record = read_job_record(run_dir)
            step, metrics = final_metrics(run_dir)
            failed = ret.status != JobStatus.COMPLETED
            error = None
            if failed:
                error = record.get("error") or _exit_reason(ret._return_value, run_dir, describe_error)
                finish_job_record(run_dir, "failed", error)  # a job that died never wrote its end
            entries.append(SweepJob(
                num=num, overrides=overrides, status="failed" if failed else "completed", run_dir=str(run_dir),
                error=error, requeues=int(record.get("requeues") or 0),
                slurm_job_id=getattr(ret, "slurm_job_id", None) or record.get("slurm_job_id"),
                final_step=step, metrics=metrics,
            ))
        assert self.config is not None
        launcher = OmegaConf.select(self.config, "hydra.runtime.choices", default={}).get("hydra/launcher", "?")
        summary = write_summary(sweep_dir, entries, launcher=str(launcher))
        log.info("sweep summary (%s):\n%s", sweep_dir / "sweep_summary.md", render_markdown(summary))
        failed = [e for e in entries if e.status == "failed"]
        if failed:  # not a bug: one line and exit code 1, without a traceback
            log.error("%s", SweepFailed(
                f"{len(failed)} of {len(entries)} sweep jobs failed (#{', #'.join(str(e.num) for e in failed)}): "
                f"see {sweep_dir / 'sweep_summary.md'}"
            ))
            raise SystemExit(1)


def _exit_reason(error: Any, run_dir: Path, describe: Any) -> str:
    """Why a job failed: its exception; for a job that exited or died, the last error line of its log
    (a user error is logged there as one line naming the key), then how it ended."""
    from hydra_plugins.grit_exp_sweep.slurm_launcher import JobDied

    if isinstance(error, SystemExit | JobDied) or error is None:
        logged = _last_error_line(run_dir)
        how = str(error) if isinstance(error, JobDied) else f"exited with code {getattr(error, 'code', None)}"
        return f"{logged} ({how})" if logged else how
    if isinstance(error, BaseException):
        return describe(error)
    return str(error)


def _last_error_line(run_dir: Path) -> str | None:
    """The message of the last `[ERROR]` record in the run's Hydra log files (`<run>/<job name>.log`)."""
    found = None
    for log_file in sorted(run_dir.glob("*.log")):
        for line in log_file.read_text(errors="replace").splitlines():
            if "[ERROR]" in line:
                found = line.split("[ERROR]", 1)[1].lstrip(" -")
    return found
