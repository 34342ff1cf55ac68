"""The `cluster` group's schema (conf/cluster/*.yaml, with SLURM's resources) and its checks.

Left out: starting processes (the launcher) and the engine (grit_exp.cluster).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from grit_exp.errors import ConfigError


class Engine(StrEnum):
    ddp = "ddp"  # plain data parallelism (one process: no wrapper at all)
    deepspeed = "deepspeed"  # ZeRO from cluster.deepspeed_config


class Backend(StrEnum):
    auto = "auto"  # nccl with CUDA, else gloo
    nccl = "nccl"
    gloo = "gloo"


class GradReduceDtype(StrEnum):
    """The dtype DeepSpeed all-reduces / reduce-scatters gradients in and accumulates them in over micro-batches
    (its `communication_data_type` and `data_types.grad_accum_dtype`)."""

    auto = "auto"  # DeepSpeed's default, the compute dtype: bf16 under bf16 mixed precision (the released GRIT code's)
    fp32 = "fp32"  # fp32 reduction and accumulation (bf16 compute over fp32 masters keeps full-precision gradients)
    bf16 = "bf16"


@dataclass
class SlurmConfig:
    """SLURM resources of each job of a sweep (`cluster=slurm`, read by conf/hydra/launcher/submitit_slurm.yaml).

    Every job runs one SLURM task per GPU (`tasks_per_node: 0`), one task on CPU nodes; each task
    joins torch.distributed through grit_exp.cluster.slurm_env."""

    nodes: int = 1
    gpus_per_node: int = 0  # 0: CPU tasks
    tasks_per_node: int = 0  # 0: one per GPU (gpus_per_node), 1 on CPU nodes
    cpus_per_task: int = 1
    mem_gb: int | None = None  # per node; null: the partition's default
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    timeout_min: int = 60
    signal_delay_s: int = 120  # SIGUSR2 this long before the time limit: checkpoint, requeue, resume
    max_requeues: int = 3  # requeues after a time-out (preemptions are always requeued)
    array_parallelism: int = 256  # jobs of one sweep running at once
    setup: list[str] = field(default_factory=list)  # shell lines run before the tasks (module load ...)


@dataclass
class ClusterConfig:
    """Where and how the processes of one job train (grit_exp.cluster.engine). The number of
    processes comes from the launcher (torchrun, accelerate launch, SLURM tasks), not from here."""

    name: str = MISSING
    engine: Engine = Engine.ddp
    # A DeepSpeed JSON (launchers/deepspeed/*.json; relative paths resolve against the repository root);
    # batch sizes, accumulation, clipping and precision are filled in from trainer.* at start-up.
    deepspeed_config: str | None = None
    backend: Backend = Backend.auto  # the process group's
    # Seconds any collective (all-reduce, gather, barrier, ZeRO-3's parameter gathers) waits for a peer
    # before the run fails naming the step and the rank; long enough for the slowest rank-0 work that
    # still sits between two collectives (a 7B checkpoint written to a network disk).
    timeout_s: int = 1800
    # DeepSpeed's gradient reduction and accumulation dtype; "auto" leaves both keys to DeepSpeed (the paper's run)
    grad_reduce_dtype: GradReduceDtype = GradReduceDtype.auto
    slurm: SlurmConfig = field(default_factory=SlurmConfig)  # each SLURM job's resources (hydra/launcher=submitit_slurm)


def check_cluster(cluster: Any) -> None:
    """ConfigError when the engine and its DeepSpeed config disagree, or the timeout is not positive."""
    if cluster.timeout_s <= 0:
        raise ConfigError(f"cluster.timeout_s={cluster.timeout_s} must be > 0 (seconds a collective waits for a peer)")
    if cluster.engine == Engine.deepspeed and not cluster.deepspeed_config:
        raise ConfigError("cluster.engine=deepspeed needs cluster.deepspeed_config (e.g. launchers/deepspeed/zero2.json)")
    reduce = getattr(cluster, "grad_reduce_dtype", GradReduceDtype.auto)
    if cluster.engine != Engine.deepspeed and reduce == GradReduceDtype.bf16:
        raise ConfigError(
            f"cluster.grad_reduce_dtype='bf16' applies to cluster.engine=deepspeed; cluster.engine="
            f"{str(cluster.engine)!r} reduces the fp32 gradients of its fp32 weights: use 'auto' or 'fp32'"
        )
    if cluster.engine != Engine.deepspeed and cluster.deepspeed_config:
        raise ConfigError(
            f"cluster.deepspeed_config={cluster.deepspeed_config!r} is set but cluster.engine={str(cluster.engine)!r}; "
            "set cluster.engine=deepspeed (or cluster=node8) to use it"
        )
