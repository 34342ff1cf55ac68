"""SLURM -> torch.distributed variables: a faked 2-node job (pure function), node-list expansion
(checked against `scontrol show hostnames` where SLURM is installed), and when nothing is set."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from grit_exp.cluster.slurm_env import (
    SlurmEnvError,
    apply_slurm_env,
    expand_nodelist,
    master_port_for_job,
    torch_env_from_slurm,
)


def two_node_task(procid: int) -> dict[str, str]:
    """What SLURM sets in task `procid` of `srun -N2 --ntasks-per-node=4` on nodes gpu-a07 and gpu-a08."""
    return {
        "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_JOB_NODELIST": "gpu-a[07-08]",
        "SLURM_NTASKS": "8", "SLURM_PROCID": str(procid), "SLURM_LOCALID": str(procid % 4),
        "SLURM_NODEID": str(procid // 4), "SLURM_TASKS_PER_NODE": "4(x2)", "SLURM_JOB_NUM_NODES": "2",
    }


def test_faked_two_node_job_maps_every_task():
    envs = [torch_env_from_slurm(two_node_task(p)) for p in range(8)]
    assert [e["RANK"] for e in envs] == [str(p) for p in range(8)]
    assert [e["LOCAL_RANK"] for e in envs] == ["0", "1", "2", "3"] * 2
    assert {e["WORLD_SIZE"] for e in envs} == {"8"}
    assert {e["LOCAL_WORLD_SIZE"] for e in envs} == {"4"}
    assert {e["MASTER_ADDR"] for e in envs} == {"gpu-a07"}, "every task agrees on the first node"
    assert {e["MASTER_PORT"] for e in envs} == {str(20000 + 4242 % 20000)}


def test_uneven_tasks_per_node_and_exported_master_port():
    env = {**two_node_task(5), "SLURM_TASKS_PER_NODE": "5,3", "MASTER_PORT": "29500"}
    out = torch_env_from_slurm(env)
    assert out["LOCAL_WORLD_SIZE"] == "3" and out["MASTER_PORT"] == "29500"


def test_master_port_is_stable_per_job_and_differs_between_jobs():
    assert master_port_for_job("123") == master_port_for_job("123")
    assert master_port_for_job("123") != master_port_for_job("124")
    assert 20000 <= master_port_for_job("987654321") < 40000


@pytest.mark.parametrize(
    ("nodelist", "hosts"),
    [
        ("localhost", ["localhost"]),
        ("node[01-03,7]", ["node01", "node02", "node03", "node7"]),
        ("node[01-03,7],gpu-a1", ["node01", "node02", "node03", "node7", "gpu-a1"]),
        ("n[098-101]", ["n098", "n099", "n100", "n101"]),
        ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
        ("a[1-2],b3,c", ["a1", "a2", "b3", "c"]),
    ],
)
def test_expand_nodelist(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts
    if shutil.which("scontrol") and os.environ.get("SLURM_CONF"):  # the authority, where a cluster is configured
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, timeout=20)
        assert out.stdout.split() == hosts


@pytest.mark.parametrize("bad", ["", "node[1-2", "node[a-b]", "node]1["])
def test_bad_nodelist_names_the_variable(bad):
    with pytest.raises(SlurmEnvError, match="SLURM_JOB_NODELIST"):
        expand_nodelist(bad)


def test_missing_variable_is_named():
    env = two_node_task(0)
    del env["SLURM_PROCID"]
    with pytest.raises(SlurmEnvError, match="SLURM_PROCID"):
        torch_env_from_slurm(env)


def test_apply_sets_all_keys_once_inside_a_multi_task_step():
    env = two_node_task(6)
    assert apply_slurm_env(env)["RANK"] == "6"
    assert env["RANK"] == "6" and env["MASTER_ADDR"] == "gpu-a07" and env["LOCAL_RANK"] == "2"
    assert apply_slurm_env(env) == {}, "idempotent: RANK is set now"


@pytest.mark.parametrize(
    "change",
    [
        {"RANK": "3"},  # torchrun (or accelerate launch) inside the task decided already
        {"SLURM_NTASKS": "1", "SLURM_PROCID": "0"},  # a single-task step: nothing to set up
        {"SLURM_STEP_ID": None},  # the batch script itself: one process although SLURM_NTASKS=8
    ],
)
def test_apply_leaves_the_environment_alone(change):
    env = two_node_task(1)
    for key, value in change.items():
        env.pop(key) if value is None else env.__setitem__(key, value)
    before = dict(env)
    assert apply_slurm_env(env) == {}
    assert env == before
