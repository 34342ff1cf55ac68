"""Rank, world size and the collectives of every process, training and evaluation alike, over accelerate.

The one collective layer: accelerate's `PartialState` holds the process group (the training engine's
`Accelerator` creates it; `init` creates it for `python -m grit_exp.evaluate` under torchrun, which has
no engine: NCCL with CUDA, gloo otherwise, or `cluster.backend`), and each collective is accelerate's
(`gather_object`, `broadcast_object_list`, `gather`, `reduce`, `wait_for_everyone`); the engine's
`gather`, `sum`, `broadcast_object`, `barrier`, `rank` and `world_size` are these functions. Before any process state
exists (a lone process, a test that evaluates in-process), rank and world size come from torchrun's
variables and every collective returns its argument, as with one process.

Written here because accelerate does not have it:
- `average_metrics`: the mean of each metric over the processes that report it (accelerate's `reduce`
  averages tensors of one shape; metric dicts are gathered as objects and may differ in keys);
- `all_gather_object` wraps its argument in a list for accelerate's `gather_object`, which
  concatenates lists (and returns a lone process's argument itself), so every caller gets one entry
  per process in rank order;
- `timeouts_reported`: a collective that waited `cluster.timeout_s` for a peer (gloo raises; the engine
  sets the timeout) ends the run with one line naming what the loop was doing, the rank and the timeout;
- `wait_for_file`: the other processes wait for rank 0's long single-process work (the warm start) on the
  filesystem, in no collective, so that work may take longer than the collective timeout.
Left out: sharding rows over processes (the evaluation deals its batches round-robin, `evaluation/
runner.py`: accelerate's `split_between_processes` gives each process a contiguous block instead, which
would change which process judges which sample), device placement and gradients (the engine's).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from grit_exp.errors import GritError


def _state() -> Any:
    """accelerate's process state once the engine or `init` started it, None before."""
    from accelerate import PartialState

    return PartialState() if PartialState._shared_state != {} else None


def resolve_backend(setting: str, cuda: bool) -> str:
    """`cluster.backend`: "auto" is NCCL with CUDA, gloo otherwise."""
    if setting == "auto":
        return "nccl" if cuda else "gloo"
    return setting


def world_size() -> int:
    state = _state()
    return state.num_processes if state is not None else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    state = _state()
    return state.process_index if state is not None else int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(backend: str = "auto") -> bool:
    """The process group of a torchrun job that has no engine (evaluation); True if this call started it."""
    if _state() is not None or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    from accelerate import PartialState

    cuda = torch.cuda.is_available()
    PartialState(cpu=not cuda, backend=resolve_backend(backend, cuda))
    return True


def reset_state() -> None:
    """Forget accelerate's process-wide singletons: one process may run several jobs in turn (Hydra's
    local multirun, a notebook, tests), each with its own precision and accumulation."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def shutdown() -> None:
    """End the process group (if any) and forget accelerate's state."""
    state = _state()
    if state is not None:
        state.destroy_process_group()
    reset_state()


def barrier() -> None:
    state = _state()
    if state is not None:
        state.wait_for_everyone()


def all_gather_object(obj: Any) -> list[Any]:
    """`obj` from every process, in rank order (a one-element list with one process)."""
    from accelerate.utils import gather_object

    if _state() is None:
        return [obj]
    return gather_object([obj])


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every process (itself with one process)."""
    from accelerate.utils import broadcast_object_list

    if world_size() == 1 or _state() is None:
        return obj
    return broadcast_object_list([obj], from_process=0)[0]


def average_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Mean of each metric over the processes that report it (the dict itself with one process)."""
    if world_size() == 1 or _state() is None:
        return metrics
    gathered = all_gather_object({k: metrics[k] for k in sorted(metrics)})
    all_keys = sorted({k for g in gathered if g for k in g})
    return {k: sum(g[k] for g in gathered if g and k in g) / sum(1 for g in gathered if g and k in g) for k in all_keys}


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenation over processes in rank order, on the CPU (the tensor itself with one process)."""
    from accelerate.utils import gather as accelerate_gather

    state = _state()
    if state is None:
        return tensor.cpu()
    return accelerate_gather(tensor.to(state.device)).cpu()


def sum_over_processes(value: float | int) -> float:
    """The sum of `value` over processes (as a float32 tensor, like every process's share)."""
    from accelerate.utils import reduce

    state = _state()
    if state is None:
        return float(torch.tensor(float(value)))
    return float(reduce(torch.tensor(float(value), device=state.device), reduction="sum"))


def is_timeout(err: BaseException) -> bool:
    """Is `err` a collective that gave up waiting for a peer? (gloo: RuntimeError / DistBackendError
    "Timed out waiting ...ms"; NCCL's watchdog ends the process itself, with its own message.)"""
    return isinstance(err, RuntimeError) and "timed out" in str(err).lower()


@contextlib.contextmanager
def timeouts_reported(where: str, timeout_s: int) -> Iterator[None]:
    """A collective timeout inside the block becomes one GritError naming `where` (e.g. "training step 3"),
    this process's rank and `cluster.timeout_s`."""
    try:
        yield
    except RuntimeError as err:
        if not is_timeout(err):
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GritError(
            f"{where}: rank {rank()} of {world_size()} waited cluster.timeout_s={timeout_s} s in a collective "
            f"that another rank never joined (that rank is slower, stuck, or runs other collectives); "
            f"the backend said: {first}"
        ) from err


def wait_for_file(path: Path, failed: Path, what: str, poll_s: float = 1.0) -> None:
    """Return once `path` exists (rank 0 finished `what`); GritError with rank 0's message if `failed` appears.

    Not a collective: no timeout applies while rank 0 works. Rank 0 dying outright ends the job anyway
    (torchrun / SLURM stop the other processes)."""
    while not path.exists():
        if failed.exists():
            raise GritError(f"rank 0 failed {what}, rank {rank()} stops: {failed.read_text().strip()} ({failed})")
        time.sleep(poll_s)
