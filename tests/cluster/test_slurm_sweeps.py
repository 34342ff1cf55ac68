"""Sweeps through hydra-submitit-launcher on a real local SLURM cluster (slow: real jobs, real processes).

Each test is one `python -m grit_exp.train -m cluster=slurm ...` of the tiny training: a 2-point sweep
that completes, a sweep with a failing point, a job interrupted by SLURM's signal that requeues and
ends equal to an uninterrupted one, and a 2-task job that trains as 2 processes over gloo.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file
from sweep_helpers import TINY, read_summary, run_sweep, wait_for

pytestmark = pytest.mark.slow


def test_two_point_sweep_runs_both_jobs_and_summarises(sweep_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_sweep(["cluster=slurm", "seed=1,2", *TINY], sweep, sweep_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = read_summary(sweep)
    assert summary["launcher"] == "submitit_slurm" and summary["counts"]["completed"] == 2
    jobs = summary["jobs"]
    assert [j["num"] for j in jobs] == [0, 1] and [j["status"] for j in jobs] == ["completed"] * 2
    assert ["seed=1" in j["overrides"] for j in jobs] == [True, False]
    assert len({j["slurm_job_id"] for j in jobs}) == 2 and all(re.fullmatch(r"\d+_[01]", j["slurm_job_id"]) for j in jobs)
    for job in jobs:
        run = sweep / str(job["num"])
        assert job["run_dir"] == str(run) and job["final_step"] == 2 and job["requeues"] == 0
        assert (run / "checkpoints" / "step_2" / "model" / "model.safetensors").is_file()
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        last_eval = [r for r in records if any(k.startswith("eval/") for k in r)][-1]
        assert job["metrics"]["eval/synth_count/reward"] == last_eval["eval/synth_count/reward"]
        assert json.loads((run / "sweep_job.json").read_text())["status"] == "completed"
    seeds = [OmegaConf.load(sweep / n / ".hydra" / "config.yaml").seed for n in "01"]
    assert seeds == [1, 2], "each job composed its own point"
    md = (sweep / "sweep_summary.md").read_text()
    assert "| 0 | seed=1 | completed |" in md and "| 1 | seed=2 | completed |" in md
    assert "sweep summary" in out.stdout + out.stderr, "the summary is printed too"

    from grit_exp.report import write_report

    texts = write_report([sweep], out=None)
    assert "### Sweep" in texts["sweeps"] and "seed=2" in texts["sweeps"], "grit_exp.report reads the sweep"


def test_a_failing_point_does_not_stop_the_others(sweep_env, tmp_path):
    # trainer.keep_last=0 fails validation inside its job (the preflight only warns), =2 trains
    sweep = tmp_path / "sweep"
    out = run_sweep(["cluster=slurm", "trainer.keep_last=0,2", *TINY], sweep, sweep_env)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 of 2 sweep jobs failed (#0)" in out.stdout + out.stderr
    failed, completed = read_summary(sweep)["jobs"]
    assert failed["status"] == "failed" and completed["status"] == "completed"
    assert "trainer.keep_last=0 must be >= 1" in failed["error"]
    assert completed["final_step"] == 2 and completed["metrics"]
    assert "trainer.keep_last=0 must be >= 1" in (sweep / "sweep_summary.md").read_text()


def test_interrupted_job_requeues_resumes_and_matches_an_uninterrupted_one(sweep_env, tmp_path):
    """Job 0 gets SLURM's preemption signal (USR2, as `--signal` sends before a time limit) after its
    first checkpoint: submitit requeues it, it resumes from that checkpoint with the same W&B run id,
    and its final weights equal job 1's, which ran without interruption (keep_last only differs)."""
    sweep = tmp_path / "sweep"
    steps = ["trainer.max_steps=10", "trainer.save_every=2", "trainer.eval_every=10", "trainer.eval_on_start=false"]
    env = {**sweep_env, "WANDB_MODE": "offline"}
    proc = run_sweep(["cluster=slurm", "trainer.keep_last=20,21", *TINY, *steps, "logger=wandb"], sweep, env,
                     background=True)
    try:
        first = sweep / "0" / "checkpoints" / "step_2"
        wait_for(lambda: first.is_dir(), 240, "job 0's first checkpoint")
        wandb_id = (sweep / "0" / "wandb_id.txt").read_text()
        job_id = json.loads((sweep / "0" / "sweep_job.json").read_text())["slurm_job_id"]
        signal = subprocess.run(["scancel", "--signal=USR2", job_id], env=env, capture_output=True, text=True)
        assert signal.returncode == 0, signal.stderr

        def state() -> str:
            out = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=env, capture_output=True, text=True)
            return out.stdout.strip()

        def restarted() -> bool:
            return len(json.loads((sweep / "0" / "sweep_job.json").read_text())["attempts"]) > 1

        wait_for(lambda: state() == "PENDING" or restarted() or proc.poll() is not None, 120, "the requeue")
        if state() == "PENDING":  # SLURM holds a requeued job back for ~2 minutes; as its admin, start it now
            subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], env=env, capture_output=True)
        output, _ = proc.communicate(timeout=400)
    finally:
        proc.kill()
    assert proc.returncode == 0, output[-4000:]
    interrupted, plain = read_summary(sweep)["jobs"]
    assert interrupted["status"] == "completed" and interrupted["requeues"] == 1, interrupted
    assert plain["requeues"] == 0 and interrupted["status_text"] == "completed after 1 requeue"
    record = json.loads((sweep / "0" / "sweep_job.json").read_text())
    assert [a["slurm_restart_count"] for a in record["attempts"]] == [0, 1]
    log_text = (sweep / "0" / "train.log").read_text()
    resumed = re.findall(r"resumed from \S+step_(\d+)", log_text)
    assert resumed and 2 <= int(resumed[-1]) < 10, "the second attempt resumed mid-way"
    assert (sweep / "0" / "wandb_id.txt").read_text() == wandb_id, "the same W&B run continues"
    assert len(list((sweep / "0" / "wandb").glob(f"offline-run-*-{wandb_id.strip()}"))) == 2
    a = load_file(sweep / "0" / "checkpoints" / "step_10" / "model" / "model.safetensors")
    b = load_file(sweep / "1" / "checkpoints" / "step_10" / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed run ends equal (bit for bit)"


def test_two_task_job_trains_as_two_processes(sweep_env, tmp_path):
    sweep = tmp_path / "sweep"
    out = run_sweep(["cluster=slurm", "cluster.slurm.tasks_per_node=2", "seed=3", *TINY], sweep, sweep_env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = sweep / "0"
    log_text = (run / "train.log").read_text()
    assert re.search(r"torch.distributed from SLURM job \d+: rank 0 of 2", log_text)
    assert re.search(r"torch.distributed from SLURM job \d+: rank 1 of 2", log_text)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train/reward" in r] == [1, 2], "metrics written once, by rank 0"
    state = run / "checkpoints" / "step_2"
    assert (state / "model" / "model.safetensors").is_file()
    assert sorted(p.name for p in (state / "state").glob("random_states_*.pkl")) == [
        "random_states_0.pkl", "random_states_1.pkl"], "each process saved its RNG state"
