"""The training engine: accelerate between the written-out training loop and the hardware.

One `TrainingEngine` per run owns device placement (one process per GPU, from `LOCAL_RANK`), the
process group, data parallelism (accelerate DDP) or DeepSpeed ZeRO-2/3 (`cluster.engine`,
`cluster.deepspeed_config`), mixed precision over fp32 master weights, gradient accumulation over
micro-batches, clipping, saving / loading the sharded engine state, the collective timeout
(`cluster.timeout_s`), the gradient reduction / accumulation dtype under DeepSpeed
(`cluster.grad_reduce_dtype`) and deterministic kernels (`trainer.deterministic`). The loop in
`training/run.py` and the GRPO step in `algorithm/grpo.py` only call it. Its collectives (rank,
gather, sum, broadcast, barrier) are `cluster/collectives.py`'s, the one layer over accelerate that
evaluation uses too.

What is written here because accelerate does not do it for this loop:
- the DeepSpeed JSON's "auto" fields are filled from `trainer.*` (accelerate can only infer them
  from a dataloader, and the GRPO loop has none);
- accelerate's DeepSpeed path starts no process group on a machine without CUDA; the backend is
  passed explicitly (gloo on CPU) and a single process gets a one-process group;
- the frozen reference model under DeepSpeed: ZeRO-3 shards it like the policy, other stages keep a
  full copy per process (stage 0);
- generation under ZeRO-3 gathers the parameters once per rollout and lifts ZeRO's per-module
  fetch hooks while it generates (otherwise every decoded token would re-gather every layer); a
  rollout that only pushes the weights elsewhere (vLLM) gets the sharded model and gathers per module.
Left out: FSDP (not needed for the paper's 3B/7B settings), the learning-rate schedule (a
`transformers.get_scheduler` on the raw optimizer, stepped by the loop once per optimizer step).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from grit_exp.cluster import collectives
from grit_exp.errors import ConfigError
from grit_exp.hydra_app import CONF_DIR

log = logging.getLogger(__name__)

REPO_ROOT = CONF_DIR.parent


def resolve_mixed_precision(setting: str, cuda: bool) -> str:
    """accelerate's `mixed_precision` for `trainer.mixed_precision`: "auto" is bf16 on CUDA, fp32 on CPU."""
    if setting == "auto":
        return "bf16" if cuda else "no"
    return setting


def use_deterministic_algorithms(setting: bool | None, cuda: bool) -> bool:
    """`trainer.deterministic` (null: on without CUDA, off with CUDA), applied to torch; returns it.

    On CUDA, deterministic cuBLAS needs CUBLAS_WORKSPACE_CONFIG before its first handle: call before any
    CUDA work (the engine is built first). Set either way, so a run after another in the same process
    (multirun, tests) gets its own setting."""
    on = (not cuda) if setting is None else bool(setting)
    if on and cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    return on


def resolve_grad_reduce_dtype(setting: str, kind: str, mixed_precision: str) -> str:
    """The dtype gradients are reduced and accumulated in (`cluster.grad_reduce_dtype`; "auto": DeepSpeed's
    default, the compute dtype; DDP always reduces the fp32 gradients of its fp32 weights)."""
    if kind != "deepspeed":
        return "fp32"
    if setting == "auto":
        return "bf16" if mixed_precision == "bf16" else "fp32"
    return setting


def deepspeed_config(path: str, *, micro_batch_size: int, accumulation_steps: int, world_size: int,
                     max_grad_norm: float, mixed_precision: str, grad_reduce_dtype: str = "auto") -> dict[str, Any]:
    """The JSON at `path` (relative paths against the repository root) with its "auto" fields filled, and
    (`grad_reduce_dtype` other than "auto") DeepSpeed's `communication_data_type` and
    `data_types.grad_accum_dtype` set to it."""
    file = Path(path)
    if not file.is_absolute():
        file = REPO_ROOT / file
    if not file.is_file():
        raise ConfigError(f"cluster.deepspeed_config={path!r}: no such file ({file}); see launchers/deepspeed/")
    try:
        config = json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{file}:{err.lineno}: not valid JSON ({err.msg})") from err
    config["train_micro_batch_size_per_gpu"] = micro_batch_size
    config["gradient_accumulation_steps"] = accumulation_steps
    config["train_batch_size"] = micro_batch_size * accumulation_steps * world_size
    config["gradient_clipping"] = max_grad_norm
    config["bf16"] = {"enabled": mixed_precision == "bf16"}
    config["fp16"] = {"enabled": False}
    if grad_reduce_dtype != "auto":
        for key in ("communication_data_type", "data_types"):
            if key in config:
                raise ConfigError(f"{file}: sets {key!r}, and so does cluster.grad_reduce_dtype={grad_reduce_dtype!r}: "
                                  "remove the key from the JSON (the option is the one place to choose it)")
        config["communication_data_type"] = grad_reduce_dtype
        config["data_types"] = {"grad_accum_dtype": grad_reduce_dtype}
    return config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _single_process_env() -> None:
    """DeepSpeed always needs a process group: give a lone process the env torchrun would set."""
    if "WORLD_SIZE" in os.environ:
        return
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", LOCAL_WORLD_SIZE="1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))


class TrainingEngine:
    """accelerate, configured from `cluster` and `trainer` (see the module docstring)."""

    def __init__(self, cluster: Any, trainer: Any, *, accumulation_steps: int, micro_batch_size: int):
        from accelerate import Accelerator
        from accelerate.utils import InitProcessGroupKwargs

        cuda = torch.cuda.is_available()
        self.kind = str(cluster.engine)
        self.mixed_precision = resolve_mixed_precision(str(trainer.mixed_precision), cuda)
        self.deterministic = use_deterministic_algorithms(trainer.deterministic, cuda)
        self.timeout_s = int(cluster.timeout_s)
        reduce_setting = str(getattr(cluster, "grad_reduce_dtype", "auto"))
        self.grad_reduce_dtype = resolve_grad_reduce_dtype(reduce_setting, self.kind, self.mixed_precision)
        backend = collectives.resolve_backend(cluster.backend, cuda)
        # every collective of the process group (DeepSpeed's included: accelerate hands the same kwargs to
        # deepspeed.init_distributed) waits at most cluster.timeout_s for a peer
        process_group = InitProcessGroupKwargs(backend=backend, timeout=timedelta(seconds=self.timeout_s))
        kwargs: dict[str, Any] = {"mixed_precision": self.mixed_precision,
                                  "gradient_accumulation_steps": accumulation_steps}
        if self.kind == "deepspeed":
            from accelerate.utils import DeepSpeedPlugin

            _single_process_env()
            ds = deepspeed_config(cluster.deepspeed_config, micro_batch_size=micro_batch_size,
                                  accumulation_steps=accumulation_steps, world_size=int(os.environ["WORLD_SIZE"]),
                                  max_grad_norm=float(trainer.max_grad_norm), mixed_precision=self.mixed_precision,
                                  grad_reduce_dtype=reduce_setting)
            self.zero_stage = int(ds.get("zero_optimization", {}).get("stage", 0))
            kwargs["deepspeed_plugin"] = DeepSpeedPlugin(hf_ds_config=ds)
            kwargs["kwargs_handlers"] = [process_group]
        else:
            self.zero_stage = None
            kwargs["cpu"] = not cuda
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                kwargs["kwargs_handlers"] = [process_group]
        collectives.reset_state()  # a previous run in this process (multirun, notebook, tests) set its own
        self.accelerator = Accelerator(**kwargs)
        self.accumulation_steps = accumulation_steps
        log.info("engine: %s%s, %d process(es), device %s, mixed precision %s, gradients reduced in %s, "
                 "deterministic %s, collective timeout %d s", self.kind,
                 f" ZeRO-{self.zero_stage}" if self.zero_stage is not None else "", self.world_size, self.device,
                 self.mixed_precision, self.grad_reduce_dtype, self.deterministic, self.timeout_s)

    # ------------------------------------------------------------------ topology
    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def rank(self) -> int:
        return collectives.rank()

    @property
    def world_size(self) -> int:
        return collectives.world_size()

    @property
    def is_main(self) -> bool:
        return collectives.is_main()

    def describe(self) -> dict[str, Any]:
        """For run_info.json and metrics: what ran where."""
        return {"engine": self.kind, "zero_stage": self.zero_stage, "num_processes": self.world_size,
                "mixed_precision": self.mixed_precision, "device": str(self.device),
                "deterministic": self.deterministic, "collective_timeout_s": self.timeout_s,
                "grad_reduce_dtype": self.grad_reduce_dtype}

    # ------------------------------------------------------------------ models
    def prepare(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        """Wrap the trainable policy and its optimizer (DDP, or a DeepSpeed engine with fp32 masters)."""
        return self.accelerator.prepare(model, optimizer)

    def prepare_frozen(self, model: torch.nn.Module) -> torch.nn.Module:
        """The frozen reference: sharded under ZeRO-3, a full copy per process otherwise."""
        model.requires_grad_(False).eval()
        if self.kind != "deepspeed":
            return model.to(self.device)
        import deepspeed

        config = copy.deepcopy(self.accelerator.state.deepspeed_plugin.deepspeed_config)
        config.pop("optimizer", None)
        config.pop("scheduler", None)
        if self.zero_stage != 3:
            config["zero_optimization"] = {"stage": 0}
        engine, *_ = deepspeed.initialize(model=model, config=config)
        engine.eval()
        return engine

    @contextlib.contextmanager
    def whole_model_loading(self) -> Iterator[None]:
        """Under ZeRO-3, transformers builds every `from_pretrained` model already sharded; models that
        live outside the engine (the single-process warm start, the untrained evaluation) load whole."""
        if self.zero_stage != 3:
            yield
            return
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
        try:
            yield
        finally:
            self.accelerator.state.deepspeed_plugin.set_deepspeed_weakref()

    def unwrap(self, model: torch.nn.Module) -> torch.nn.Module:
        return self.accelerator.unwrap_model(model)

    @contextlib.contextmanager
    def generation_model(self, model: torch.nn.Module, gather: bool = True) -> Iterator[torch.nn.Module]:
        """The bare model to call `generate` on; under ZeRO-3 its parameters are gathered once (`gather=False`:
        left sharded, for a rollout that gathers what it reads itself, e.g. the vLLM push)."""
        unwrapped = self.unwrap(model)
        if self.zero_stage != 3 or not gather:
            yield unwrapped
            return
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters())):
            offload = _zero3_parameter_offload(model)
            _lift_zero3_hooks(offload)
            try:
                yield unwrapped
            finally:
                _restore_zero3_hooks(offload)

    # ------------------------------------------------------------------ steps
    def autocast(self) -> contextlib.AbstractContextManager:
        return self.accelerator.autocast()

    def accumulate(self, model: torch.nn.Module) -> contextlib.AbstractContextManager:
        return self.accelerator.accumulate(model)

    @property
    def sync_gradients(self) -> bool:
        return self.accelerator.sync_gradients

    def backward(self, loss: torch.Tensor) -> None:
        """Backward of a micro-batch loss that is already weighted to its share of the step's loss
        (accelerate / DeepSpeed divide by the accumulation steps; that is undone here)."""
        self.accelerator.backward(loss * self.accumulation_steps)

    def clip_grad_norm(self, model: torch.nn.Module, max_norm: float) -> float:
        """Clip (DDP) or read DeepSpeed's clipped global norm; call on the step's last micro-batch."""
        params = [p for p in model.parameters() if p.requires_grad]
        norm = self.accelerator.clip_grad_norm_(params, max_norm)
        return float(norm) if norm is not None else float("nan")

    # ------------------------------------------------------------------ collectives (cluster/collectives.py)
    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenation over processes in rank order, on the CPU (the tensor itself with one process)."""
        return collectives.gather(tensor)

    def sum(self, value: float | int) -> float:
        return collectives.sum_over_processes(value)

    def broadcast_object(self, obj: Any) -> Any:
        return collectives.broadcast_object(obj)

    def barrier(self) -> None:
        collectives.barrier()

    # ------------------------------------------------------------------ state
    def save_state(self, directory: Path) -> None:
        """Every process writes its part (DeepSpeed shards, its RNG) into the same directory; returns when all
        parts are written (accelerate's last write, each process's RNG file, is not followed by a barrier,
        and the caller may move the directory next)."""
        self.accelerator.save_state(str(directory))
        collectives.barrier()

    def load_state(self, directory: Path) -> None:
        """Each process reads its own RNG file and its own optimizer shard (DeepSpeed), onto its own device."""
        self.accelerator.load_state(str(directory))

    def full_state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Consolidated weights on the main process (a collective under ZeRO-3: call on every process)."""
        return self.accelerator.get_state_dict(model)

    def shutdown(self) -> None:
        self.accelerator.end_training()
        collectives.shutdown()


def _zero3_parameter_offload(engine: Any) -> Any:
    optimizer = getattr(engine, "optimizer", None)
    return getattr(optimizer, "parameter_offload", optimizer)


def _lift_zero3_hooks(offload: Any) -> None:
    """Remove ZeRO-3's hooks (the start-of-forward step reset and the per-module fetch/release hooks)
    while the gathered parameters generate: they are collectives, and processes generate different
    numbers of batches and tokens."""
    if offload is None or not hasattr(offload, "forward_hooks"):
        return
    for param in offload.module.parameters(recurse=True):
        param.ds_active_sub_modules.clear()
    for hook in [*offload.forward_hooks, *offload.backward_hooks]:
        hook.remove()
    offload.forward_hooks, offload.backward_hooks = [], []
    start = getattr(offload, "fwd_pre_hook", None)
    if start is not None:
        offload._lifted_start_hook = offload.module._forward_pre_hooks.pop(start.id, None)


def _restore_zero3_hooks(offload: Any) -> None:
    if offload is None or not hasattr(offload, "forward_hooks"):
        return
    start, lifted = getattr(offload, "fwd_pre_hook", None), getattr(offload, "_lifted_start_hook", None)
    if start is not None and lifted is not None:
        offload.module._forward_pre_hooks[start.id] = lifted  # first again: it runs before the fetch hooks
        offload._lifted_start_hook = None
    coordinator = getattr(offload, "param_coordinator", None)
    if coordinator is not None and not coordinator.is_invalid_trace():
        coordinator._invalidate_trace()
    offload._register_deepspeed_module(offload.module)
