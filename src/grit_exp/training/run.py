"""Orchestration of a training run: build everything from the config, resume, loop, evaluate, save.

The loop is written out here (no framework trainer): prompts from the sampler -> `grpo_step` (or an
SFT step) -> metrics -> periodic evaluation and atomic checkpoints. At the end it prints a
before/after table of the evaluation metrics and writes `reward_curve.png` into the run directory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from grit_exp.config import to_plain
from grit_exp.data.reader import load_dataset_splits
from grit_exp.evaluation.runner import evaluate_model
from grit_exp.judge import build_judge
from grit_exp.models import build_adapter
from grit_exp.rollout.hf import HFRollout
from grit_exp.training import checkpoint as ckpt
from grit_exp.training import distributed
from grit_exp.training.grpo import StepModules, grpo_step
from grit_exp.training.logger import RunLogger, truncate_metrics_after
from grit_exp.training.precision import forward_precision
from grit_exp.training.run_info import write_run_info
from grit_exp.training.sampler import PromptSampler
from grit_exp.training.sft import cached_warm_start, sft_step_loss
from grit_exp.training.summary import summarize_run

log = logging.getLogger("grit_exp.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_scheduler(optimizer: torch.optim.Optimizer, trainer: Any) -> torch.optim.lr_scheduler.LambdaLR:
    warmup, total = trainer.warmup_steps, max(1, trainer.max_steps)

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if trainer.lr_scheduler == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_lora(model: torch.nn.Module, lora_cfg: Any) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
                        target_modules=list(lora_cfg.target_modules))
    return get_peft_model(model, config)


def evaluate_untrained(cfg: DictConfig, adapter: Any, judge: Any, eval_sets: dict, device: torch.device,
                       out_dir: Path) -> dict[str, float]:
    """The model as loaded, before any warm start: the first column of the before/after table."""
    model = adapter.load_model(device)
    result = evaluate_model(cfg, adapter, model, judge, eval_sets, out_dir, extra_meta={"checkpoint": "untrained"})
    del model
    return result.flat


def run_training(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    distributed.init(cfg.cluster.backend)
    run_dir = Path(run_dir or HydraConfig.get().runtime.output_dir)
    main = distributed.is_main()
    seed_everything(cfg.seed + distributed.rank())
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    paths_cache = Path(cfg.paths.cache_dir).expanduser()

    if main:
        load_dataset_splits(cfg.dataset, cfg.seed)  # rank 0 generates / checks the data first
    distributed.barrier()
    train_rows, eval_sets = load_dataset_splits(cfg.dataset, cfg.seed)
    if main:
        write_run_info(run_dir, cfg, [*train_rows, *(r for rows in eval_sets.values() for r in rows)])
    adapter = build_adapter(cfg.model) if main else None  # rank 0 builds a tiny model first, once
    distributed.barrier()
    adapter = adapter or build_adapter(cfg.model)
    judge = build_judge(cfg.judge)
    is_sft = cfg.algorithm.name == "sft"

    precision = forward_precision(device, cfg.trainer.bf16)
    untrained_metrics: dict[str, float] = {}
    start_path = None
    if not is_sft and cfg.trainer.warm_start_sft_steps > 0:
        if cfg.trainer.eval_on_start and eval_sets and not ckpt.complete_checkpoints(run_dir / "checkpoints"):
            untrained_metrics = evaluate_untrained(cfg, adapter, judge, eval_sets, device, run_dir / "eval" / "untrained")
        if main:
            cached_warm_start(cfg, adapter, train_rows, paths_cache, device, precision)
        distributed.barrier()
        start_path = str(cached_warm_start(cfg, adapter, train_rows, paths_cache, device, precision))

    checkpoints_dir = run_dir / "checkpoints"
    resume_from = None
    if cfg.trainer.resume == "auto":
        resume_from = ckpt.latest_checkpoint(checkpoints_dir)
    elif cfg.trainer.resume != "never":
        resume_from = Path(cfg.trainer.resume)

    lora = cfg.model.lora.enabled
    load_path = str(ckpt.model_dir(resume_from)) if resume_from is not None and not lora else start_path
    policy = adapter.load_model(device, path=load_path)
    if lora:
        with torch.random.fork_rng():  # the same adapter initialisation on every process
            torch.manual_seed(cfg.seed)
            policy = apply_lora(policy, cfg.model.lora)
        if resume_from is not None:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            set_peft_model_state_dict(policy, load_file(ckpt.model_dir(resume_from) / "adapter_model.safetensors"))
    reference = None
    if not is_sft and cfg.algorithm.beta != 0 and not lora:
        reference = adapter.load_model(device, path=start_path).eval().requires_grad_(False)

    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.trainer.learning_rate, weight_decay=cfg.trainer.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    sampler = PromptSampler(len(train_rows), cfg.seed)
    modules = StepModules(adapter, policy, reference, HFRollout(adapter, cfg.rollout), judge, optimizer, scheduler, cfg,
                          precision)

    world, rank = distributed.world_size(), distributed.rank()
    start_step = 0
    if resume_from is not None:
        state = ckpt.load_trainer_state(resume_from)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        if len(state["rng_per_rank"]) != world:
            raise RuntimeError(
                f"{resume_from} was written by {len(state['rng_per_rank'])} processes, this run has {world}: "
                "resume with the same number of processes"
            )
        ckpt.set_rng_state(state["rng_per_rank"][rank])
        start_step = state["step"]
        if main:
            truncate_metrics_after(run_dir / "metrics.jsonl", start_step)
        log.info("resumed from %s at step %d", resume_from, start_step)

    logger = RunLogger(run_dir, cfg.logger, to_plain(cfg), cfg.trainer.max_steps, enabled=main)
    per_process = cfg.trainer.prompts_per_step // world

    def evaluate(step: int) -> None:
        """Greedy evaluation (grit_exp.evaluation) into <run>/eval/step_<N>/: metrics.json, samples.jsonl,
        report.html with pictures of the parsed boxes; the flat metrics go to metrics.jsonl."""
        with precision():
            result = evaluate_model(cfg, adapter, policy, judge, eval_sets, run_dir / "eval" / f"step_{step}", step=step)
        logger.log(step, result.flat, force=True)
        logger.log_table(
            f"completions/step_{step}", ["dataset", "question", "completion", "reward", "rewards"],
            [[r["dataset"], r["question"], r.get("completion"), r.get("reward"), json.dumps(r.get("rewards"))]
             for r in result.records[:16]],
        )

    if untrained_metrics:
        logger.log(0, {f"init/{k.removeprefix('eval/')}": v for k, v in untrained_metrics.items()}, force=True)
    if start_step == 0 and cfg.trainer.eval_on_start and eval_sets:
        evaluate(0)
    for step in range(start_step + 1, cfg.trainer.max_steps + 1):
        indices = sampler.next_indices(cfg.trainer.prompts_per_step)[rank * per_process : (rank + 1) * per_process]
        rows = [train_rows[i] for i in indices]
        if is_sft:
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            with precision():
                loss = sft_step_loss(adapter, policy, rows, cfg.prompt)
            loss.backward()
            distributed.average_gradients(policy)
            torch.nn.utils.clip_grad_norm_(params, cfg.trainer.max_grad_norm)
            optimizer.step()
            scheduler.step()
            metrics = {"train/sft_loss": float(loss.detach()), "train/lr": scheduler.get_last_lr()[0], "time/step_s": time.perf_counter() - t0}
        else:
            metrics = grpo_step(modules, rows)
        metrics = distributed.average_metrics(metrics)
        logger.log(step, metrics)
        logger.progress(step, metrics)
        if eval_sets and (step % cfg.trainer.eval_every == 0 or step == cfg.trainer.max_steps):
            evaluate(step)
        if step % cfg.trainer.save_every == 0 or step == cfg.trainer.max_steps:
            distributed.check_replicas_equal(policy)
            rng_per_rank = distributed.all_gather_object(ckpt.rng_state())
            if main:
                state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "sampler": sampler.state_dict(), "rng_per_rank": rng_per_rank}
                ckpt.save_checkpoint(checkpoints_dir, step, policy, state, cfg.trainer.keep_last)
            distributed.barrier()
    logger.close()
    summary = summarize_run(run_dir) if main else {}
    summary["reference_model_built"] = reference is not None
    distributed.shutdown()
    return summary
