"""The sweep summary: final metrics from metrics.jsonl, the JSON and Markdown files, the report's
sweep section with the paper's Table 3; and a local multirun (Hydra's basic launcher, real jobs) whose
failing point leaves the other running and both in the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sweep_helpers import TINY, read_summary, run_sweep

from grit_exp.cluster.sweep.summary import SweepJob, final_metrics, write_summary
from grit_exp.cluster.sweep.summary import read_summary as read_summary_file


def write_run(run: Path, records: list[dict]) -> Path:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 9, "train/rew')
    return run


def test_final_metrics_are_the_last_evaluation_and_train_reward(tmp_path):
    run = write_run(tmp_path / "0", [
        {"step": 0, "eval/vsr_val/acc": 0.1},
        {"step": 5, "train/reward": 1.0},
        {"step": 10, "train/reward": 1.5, "eval/vsr_val/acc": 0.4, "eval/vsr_val/giou": 0.2},
        {"step": 11, "train/reward": 1.7},
    ])
    step, metrics = final_metrics(run)
    assert step == 10, "the cut-off last line (a job killed mid-write) is skipped"
    assert metrics == {"eval/vsr_val/acc": 0.4, "eval/vsr_val/giou": 0.2, "train/reward": 1.7}
    assert final_metrics(tmp_path / "missing") == (None, {})


def test_summary_files_list_every_job(tmp_path):
    jobs = [
        SweepJob(num=1, overrides=["seed=2", "cluster=slurm"], status="failed", run_dir="r/1",
                 error="trainer.keep_last=0 must be >= 1", slurm_job_id="7_1"),
        SweepJob(num=0, overrides=["seed=1", "cluster=slurm"], status="completed", run_dir="r/0", requeues=2,
                 slurm_job_id="7_0", final_step=10, metrics={"eval/vsr_val/acc": 0.5, "train/reward": 1.25}),
    ]
    written = write_summary(tmp_path, jobs, launcher="submitit_slurm")
    assert read_summary_file(tmp_path) == written
    assert [j["num"] for j in written["jobs"]] == [0, 1]
    assert written["counts"] == {"completed": 1, "failed": 1, "requeued": 1}
    assert written["jobs"][0]["status_text"] == "completed after 2 requeues"
    md = (tmp_path / "sweep_summary.md").read_text()
    assert "Overrides of every job: `cluster=slurm`" in md
    assert "| 0 | seed=1 | completed after 2 requeues | 7_0 | r/0 | 10 | 0.500 | 1.250 |" in md
    assert "- #1 (seed=2): trainer.keep_last=0 must be >= 1" in md


@pytest.mark.slow
def test_local_multirun_with_a_failing_point(tmp_path, grit_cache, tiny_model_paths):
    """Hydra's basic launcher runs jobs in this process: the failing one (it fails validation inside the job
    with exit code 2) must not end the sweep; the summary names why it failed."""
    import os

    sweep = tmp_path / "sweep"
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    out = run_sweep(["trainer.keep_last=0,2", *TINY], sweep, env)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    failed, completed = read_summary(sweep)["jobs"]
    assert read_summary(sweep)["launcher"] == "basic"
    assert failed["status"] == "failed" and "trainer.keep_last=0 must be >= 1" in failed["error"]
    assert completed["status"] == "completed" and completed["final_step"] == 2 and completed["slurm_job_id"] is None
