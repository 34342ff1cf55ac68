"""`python -m grit_exp.evaluate` as the tasks of a SLURM job step: SLURM's variables become torch.distributed's.

Two real processes started the way `srun -n 2` starts them (no torchrun: only SLURM_* in their environment,
a job step of one node) replay the hand-worked fixture with the rules judge. They must form one process
group of 2 (metrics.json: "num_processes": 2) and write exactly the 1-process files. Before evaluate
mapped SLURM's environment (#18) each task ran alone as a world of 1, both into the same run directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from eval_replay_fixture import replay_overrides, write_fixture

from grit_exp.evaluation.runner import run_evaluation

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_task(procid: int, ntasks: int, port: int) -> dict[str, str]:
    """What SLURM sets in task `procid` of `srun -N1 -n ntasks` on the node `localhost` (job 4242, step 0),
    with the master port exported by the batch script, as the README's SLURM section does."""
    return {"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_JOB_NODELIST": "localhost",
            "SLURM_NTASKS": str(ntasks), "SLURM_PROCID": str(procid), "SLURM_LOCALID": str(procid),
            "SLURM_NODEID": "0", "SLURM_TASKS_PER_NODE": str(ntasks), "SLURM_JOB_NUM_NODES": "1",
            "MASTER_PORT": str(port)}


@pytest.mark.slow  # two processes over gloo (~20 s)
def test_evaluate_maps_slurm_tasks_to_one_process_group(compose_eval, tmp_path):
    overrides = replay_overrides(write_fixture(tmp_path / "replay"), "judge=rules", "eval.batch_size=4",
                                 "eval.num_pictures=0")
    one = tmp_path / "one"
    run_evaluation(compose_eval(*overrides), one)
    two = tmp_path / "two"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith("SLURM_") and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    port = free_port()
    tasks = [subprocess.Popen([sys.executable, "-m", "grit_exp.evaluate", *overrides, f"hydra.run.dir={two}"],
                              cwd=ROOT, env={**base, "OMP_NUM_THREADS": "1", **slurm_task(i, 2, port)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = []
    for task in tasks:
        try:
            outputs.append(task.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for other in tasks:
                other.kill()
            raise
    assert [t.returncode for t in tasks] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    assert "torch.distributed from SLURM job 4242: rank 1 of 2" in outputs[1], outputs[1][-3000:]
    metrics_one, metrics_two = (p.joinpath("metrics.json").read_text() for p in (one, two))
    assert '"num_processes": 2' in metrics_two, "the two SLURM tasks formed one process group"
    assert metrics_two.replace('"num_processes": 2', '"num_processes": 1') == metrics_one
    assert (two / "samples.jsonl").read_bytes() == (one / "samples.jsonl").read_bytes()
