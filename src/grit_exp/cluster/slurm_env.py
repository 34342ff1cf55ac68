"""The torch.distributed environment of a SLURM task: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT.

Each task of a SLURM job step (`srun`, or a submitit job with several tasks: one task per GPU)
starts with SLURM_* variables only; torch.distributed's `env://` rendezvous (and accelerate) read the
variables torchrun sets. `torch_env_from_slurm` maps one to the other as a pure function, so it is
tested with a faked multi-node environment; `apply_slurm_env` writes the result into `os.environ`
(called once, by the training entry point `grit_exp.train`, before validation).

Why not `submitit.helpers.TorchDistributedEnvironment`: it reads only `os.environ` (no pure function
to test), refuses to run when any variable is already set, and rewrites CUDA_VISIBLE_DEVICES to the
local rank, which breaks an engine that selects `cuda:LOCAL_RANK`. Node lists are expanded here
because `scontrol show hostnames` needs the cluster's slurm.conf (without one it retries for 60 s);
tests check this parser against scontrol. Left out: starting processes (SLURM/submitit do) and
initialising the process group (the training engine's accelerate does).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, MutableMapping

log = logging.getLogger(__name__)

MASTER_PORT_BASE = 20000
MASTER_PORT_SPAN = 20000  # ports 20000..39999: above the usual services, below the ephemeral range
TORCH_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class SlurmEnvError(ValueError):
    """A SLURM variable is missing or malformed; the message names it."""


def expand_nodelist(nodelist: str) -> list[str]:
    """Hostnames of a SLURM node list, in order: "node[01-03,7],gpu-a1" -> node01, node02, node03, node7, gpu-a1.

    Zero padding of a range is kept ("[098-100]" -> 098, 099, 100); several bracket groups in one
    name multiply ("r[1-2]n[1-2]" -> r1n1, r1n2, r2n1, r2n2)."""
    hosts: list[str] = []
    for group in _split_top_level(nodelist.strip()):
        names = [""]
        for literal, ranges in re.findall(r"([^\[\]]*)(?:\[([^\]]*)\])?", group):
            names = [n + literal for n in names]
            if ranges:
                names = [n + s for n in names for s in _expand_ranges(ranges, nodelist)]
        hosts.extend(n for n in names if n)
    if not hosts:
        raise SlurmEnvError(f"SLURM_JOB_NODELIST={nodelist!r} names no host")
    return hosts


def _split_top_level(text: str) -> list[str]:
    groups, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if depth < 0 or depth > 1:
            raise SlurmEnvError(f"SLURM_JOB_NODELIST={text!r}: unbalanced brackets")
        if ch == "," and depth == 0:
            groups.append(text[start:i])
            start = i + 1
    if depth:
        raise SlurmEnvError(f"SLURM_JOB_NODELIST={text!r}: unbalanced brackets")
    groups.append(text[start:])
    return [g for g in groups if g]


def _expand_ranges(ranges: str, nodelist: str) -> list[str]:
    out = []
    for part in ranges.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not match:
            raise SlurmEnvError(f"SLURM_JOB_NODELIST={nodelist!r}: {part!r} is not a number or a range a-b")
        first, last = match.group(1), match.group(2) or match.group(1)
        width = len(first) if first.startswith("0") else 0
        out.extend(str(i).zfill(width) for i in range(int(first), int(last) + 1))
    return out


def master_port_for_job(job_id: str) -> int:
    """A port derived from the job id: every task of a job computes the same one, concurrent jobs differ."""
    digits = re.sub(r"\D", "", job_id)
    if not digits:
        raise SlurmEnvError(f"SLURM_JOB_ID={job_id!r} is not a number")
    return MASTER_PORT_BASE + int(digits) % MASTER_PORT_SPAN


def _int(environ: Mapping[str, str], key: str) -> int:
    value = environ.get(key)
    if value is None or not value.strip().isdigit():
        raise SlurmEnvError(f"{key}={value!r}: expected a non-negative integer in a SLURM task's environment")
    return int(value)


def torch_env_from_slurm(environ: Mapping[str, str]) -> dict[str, str]:
    """The torchrun-style variables of the SLURM task described by `environ`.

    RANK = SLURM_PROCID, WORLD_SIZE = SLURM_NTASKS, LOCAL_RANK = SLURM_LOCALID, LOCAL_WORLD_SIZE =
    tasks on this node (SLURM_TASKS_PER_NODE's entry for SLURM_NODEID, else WORLD_SIZE / nodes),
    MASTER_ADDR = the first host of SLURM_JOB_NODELIST, MASTER_PORT = MASTER_PORT from `environ` when
    set (exported at submission, so the same in every task), else derived from SLURM_JOB_ID."""
    nodes = expand_nodelist(environ.get("SLURM_JOB_NODELIST") or environ.get("SLURM_NODELIST") or "")
    world = _int(environ, "SLURM_NTASKS")
    rank = _int(environ, "SLURM_PROCID")
    if rank >= world:
        raise SlurmEnvError(f"SLURM_PROCID={rank} is not below SLURM_NTASKS={world}")
    port = environ.get("MASTER_PORT") or str(master_port_for_job(environ.get("SLURM_JOB_ID", "")))
    return {
        "RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_RANK": str(_int(environ, "SLURM_LOCALID")),
        "LOCAL_WORLD_SIZE": str(_tasks_on_this_node(environ, world, len(nodes))),
        "MASTER_ADDR": nodes[0],
        "MASTER_PORT": port,
    }


def _tasks_on_this_node(environ: Mapping[str, str], world: int, num_nodes: int) -> int:
    """SLURM_TASKS_PER_NODE is e.g. "4(x2),3": 4 tasks on each of two nodes, then 3."""
    spec = environ.get("SLURM_TASKS_PER_NODE")
    node = int(environ.get("SLURM_NODEID", "0") or 0)
    if spec:
        counts: list[int] = []
        for part in spec.split(","):
            match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", part.strip())
            if not match:
                raise SlurmEnvError(f"SLURM_TASKS_PER_NODE={spec!r}: {part!r} is not N or N(xM)")
            counts += [int(match.group(1))] * int(match.group(2) or 1)
        if node < len(counts):
            return counts[node]
    return max(1, world // max(1, num_nodes))


def in_slurm_step(environ: Mapping[str, str]) -> bool:
    """True inside a task of a SLURM job step (srun / submitit), not in the batch script itself:
    the batch script sees SLURM_NTASKS of the whole job but is one process, so it must stay single."""
    return "SLURM_JOB_ID" in environ and "SLURM_PROCID" in environ and "SLURM_STEP_ID" in environ


def apply_slurm_env(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set the torch.distributed variables from SLURM's in `environ` (default `os.environ`); returns what was set.

    Does nothing (returns {}) outside a SLURM job step, when RANK is already set (torchrun, or
    accelerate launch inside the task, decided already) or when the step has a single task.
    Otherwise all of TORCH_KEYS are written together, so a partial set never mixes with SLURM's.
    Idempotent: a second call sees RANK and does nothing."""
    env = os.environ if environ is None else environ
    if not in_slurm_step(env) or "RANK" in env or int(env.get("SLURM_NTASKS", "1") or 1) <= 1:
        return {}
    values = torch_env_from_slurm(env)
    env.update(values)
    log.info(
        "torch.distributed from SLURM job %s: rank %s of %s (local rank %s), master %s:%s",
        env.get("SLURM_JOB_ID"), values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"],
        values["MASTER_ADDR"], values["MASTER_PORT"],
    )
    return values
