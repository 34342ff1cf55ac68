"""Rank, world size and object collectives for code that runs in training and evaluation alike.

Training's process group, devices and gradients belong to the engine (`training/engine.py`,
accelerate); this module only reads the group it set up (evaluation shards rows and merges them,
the loop averages metrics). `init` starts a group for the evaluation entry point, which has no
engine: NCCL with CUDA, gloo otherwise (or `cluster.backend`).
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


def average_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Mean of each metric over processes (keys must agree across processes)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return metrics
    keys = sorted(metrics)
    gathered: list[dict[str, float] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, {k: metrics[k] for k in keys})
    all_keys = sorted({k for g in gathered if g for k in g})
    return {k: sum(g[k] for g in gathered if g and k in g) / sum(1 for g in gathered if g and k in g) for k in all_keys}


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
