"""Process-group glue for torchrun / SLURM launches: rank, world size, gradient and metric reduction.

Single-process runs never touch torch.distributed. Multi-process runs use NCCL with CUDA and gloo
otherwise (or `cluster.backend`). Gradients are averaged with all-reduce after backward (each
process owns whole prompt groups, so nothing else needs gathering); metrics are averaged for logging.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(backend: str = "auto") -> None:
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def average_gradients(model: torch.nn.Module) -> None:
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    n = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= n


def average_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Mean of each metric over processes (keys must agree across processes)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return metrics
    keys = sorted(metrics)
    gathered: list[dict[str, float] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {k: metrics[k] for k in keys})
    all_keys = sorted({k for g in gathered if g for k in g})
    return {k: sum(g[k] for g in gathered if g and k in g) / sum(1 for g in gathered if g and k in g) for k in all_keys}


def check_replicas_equal(model: torch.nn.Module) -> None:
    """Raise if the processes' parameters differ (they must: gradients are averaged every step)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    with torch.no_grad():
        digest = [float(p.double().sum()) + float(p.double().abs().sum()) for p in model.parameters()]
    gathered = all_gather_object(digest)
    if any(g != gathered[0] for g in gathered[1:]):
        raise RuntimeError("model replicas diverged across processes: gradients were not averaged identically")


def all_gather_object(obj: Any) -> list[Any]:
    """`obj` from every process, in rank order (a one-element list without a process group)."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every process (itself without a process group)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
