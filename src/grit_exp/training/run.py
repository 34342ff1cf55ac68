"""Orchestration of a training run: build everything from the config, resume, loop, evaluate, save.

The loop is written out here (no framework trainer): prompts from the sampler -> `grpo_step` (or an
SFT step) -> metrics -> periodic evaluation and atomic checkpoints. Everything that depends on the
hardware (devices, DDP / DeepSpeed, precision, accumulation, sharded state) goes through the
`TrainingEngine`. Rank 0 decides the run directory and the checkpoint to resume from and
broadcasts them; only rank 0 writes logs, metrics and the model directory. At the end it prints a
before/after table of the evaluation metrics and writes `reward_curve.png` into the run directory.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from grit_exp.algorithm.grpo import StepModules, grpo_step, micro_batches
from grit_exp.algorithm.sft import cached_warm_start, sft_step_loss
from grit_exp.cluster import collectives as distributed
from grit_exp.cluster.engine import TrainingEngine, apply_cluster_env
from grit_exp.config import to_plain, validate
from grit_exp.data.reader import load_dataset_splits
from grit_exp.errors import GritError
from grit_exp.evaluation.runner import evaluate_model
from grit_exp.judge import build_judge
from grit_exp.models import build_adapter
from grit_exp.rollout.factory import build_rollout
from grit_exp.run_info import write_run_info
from grit_exp.training import checkpoint as ckpt
from grit_exp.training.logger import RunLogger, truncate_metrics_after
from grit_exp.training.sampler import PromptSampler
from grit_exp.training.summary import summarize_run

log = logging.getLogger("grit_exp.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_scheduler(optimizer: torch.optim.Optimizer, trainer: Any) -> torch.optim.lr_scheduler.LRScheduler:
    """transformers' schedule (`trainer.lr_scheduler`: cosine or constant, after `warmup_steps`), one
    step per optimizer step."""
    from transformers import get_scheduler

    name = "constant_with_warmup" if trainer.lr_scheduler == "constant" else trainer.lr_scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=trainer.warmup_steps,
                         num_training_steps=max(1, trainer.max_steps))


def accumulation_steps(cfg: DictConfig, world_size: int) -> int:
    """Micro-batches per optimizer step on each process (validated to divide evenly)."""
    per_process = cfg.trainer.prompts_per_step // world_size
    if cfg.algorithm.name != "sft":
        per_process *= cfg.algorithm.num_generations
    return max(1, per_process // min(cfg.trainer.micro_batch_size, per_process))


VISION_MODULES = r".*\.(visual|vision_tower)\..*"  # Qwen2.5-VL's and InternVL's vision towers


def apply_lora(model: torch.nn.Module, lora_cfg: Any) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
                        target_modules=list(lora_cfg.target_modules),
                        exclude_modules=VISION_MODULES if lora_cfg.exclude_vision else None)
    return get_peft_model(model, config)


def evaluate_untrained(cfg: DictConfig, adapter: Any, judge: Any, eval_sets: dict, device: torch.device,
                       out_dir: Path) -> dict[str, float]:
    """The model as loaded, before any warm start: the first column of the before/after table (greedy
    only: sampling random weights costs minutes and says nothing)."""
    import dataclasses

    from grit_exp.evaluation.settings import EvalOptions

    model = adapter.load_model(device)
    options = dataclasses.replace(EvalOptions.from_config(cfg), sampled_k=0)
    result = evaluate_model(cfg, adapter, model, judge, eval_sets, out_dir, options=options,
                            extra_meta={"checkpoint": "untrained"})
    del model
    return result.flat


def agree_on_run_dir(engine: TrainingEngine, own: Path) -> Path:
    """Rank 0's run directory on every process. Each process's Hydra resolved `${now:...}` on its own;
    a directory that Hydra made for another rank holds only Hydra's files and is removed."""
    chosen = Path(engine.broadcast_object(str(own)))
    if chosen.resolve() != own.resolve() and own.is_dir():
        hydra_only = all(p.name == ".hydra" or p.suffix == ".log" for p in own.iterdir())
        if hydra_only:
            shutil.rmtree(own, ignore_errors=True)
    return chosen


def _hydra_run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def build_policy(cfg: DictConfig, adapter: Any, engine: TrainingEngine, start_path: str | None) -> torch.nn.Module:
    """The trainable policy: fp32 master weights (LoRA: the frozen base in model.dtype, fp32 adapters)."""
    lora = cfg.model.lora.enabled
    policy = adapter.load_model(engine.device, path=start_path, dtype=None if lora else "float32")
    if lora:
        with torch.random.fork_rng():  # the same adapter initialisation on every process
            torch.manual_seed(cfg.seed)
            policy = apply_lora(policy, cfg.model.lora)
    return policy


def run_training(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    apply_cluster_env()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    validate(cfg, world_size=world)
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=accumulation_steps(cfg, world),
                            micro_batch_size=cfg.trainer.micro_batch_size)
    run_dir = agree_on_run_dir(engine, Path(run_dir) if run_dir else _hydra_run_dir())
    main, rank = engine.is_main, engine.rank
    seed_everything(cfg.seed + rank)
    device = engine.device
    paths_cache = Path(cfg.paths.cache_dir).expanduser()

    if main:
        load_dataset_splits(cfg.dataset, cfg.seed)  # rank 0 generates / checks the data first
    engine.barrier()
    train_rows, eval_sets = load_dataset_splits(cfg.dataset, cfg.seed)
    if main:
        write_run_info(run_dir, cfg, [*train_rows, *(r for rows in eval_sets.values() for r in rows)])
        (run_dir / "engine.json").write_text(json.dumps(engine.describe(), indent=2))
    with engine.whole_model_loading():  # building a tiny model is no collective, even under ZeRO-3
        adapter = build_adapter(cfg.model) if main else None  # rank 0 builds a tiny model first, once
        engine.barrier()
        adapter = adapter or build_adapter(cfg.model)
    judge = build_judge(cfg.judge)
    is_sft = cfg.algorithm.name == "sft"

    checkpoints_dir = run_dir / "checkpoints"
    resume_from = ckpt.resolve_resume(cfg.trainer.resume, checkpoints_dir) if main else None
    resume_from = engine.broadcast_object(resume_from)

    untrained_metrics: dict[str, float] = {}
    start_path = None
    if not is_sft and cfg.trainer.warm_start_sft_steps > 0:
        with engine.whole_model_loading():
            if cfg.trainer.eval_on_start and eval_sets and resume_from is None:
                untrained_metrics = evaluate_untrained(cfg, adapter, judge, eval_sets, device,
                                                       run_dir / "eval" / "untrained")
            if main:
                cached_warm_start(cfg, adapter, train_rows, paths_cache, device, engine.autocast)
            engine.barrier()
            start_path = str(cached_warm_start(cfg, adapter, train_rows, paths_cache, device, engine.autocast))

    policy = build_policy(cfg, adapter, engine, start_path)
    reference = None
    if not is_sft and cfg.algorithm.beta != 0 and not cfg.model.lora.enabled:
        reference = engine.prepare_frozen(adapter.load_model("cpu", path=start_path))
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.trainer.learning_rate, weight_decay=cfg.trainer.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    policy, optimizer = engine.prepare(policy, optimizer)
    sampler = PromptSampler(len(train_rows), cfg.seed)
    rollout = build_rollout(adapter, cfg.rollout, cfg.seed)  # hf or vllm
    modules = StepModules(adapter, policy, reference, rollout, judge, optimizer, scheduler, cfg, engine)

    start_step = 0
    if resume_from is not None:
        state = ckpt.load_trainer_state(resume_from)
        if state["world_size"] != engine.world_size:
            raise GritError(
                f"{resume_from} was written by {state['world_size']} processes, this run has {engine.world_size}: "
                "resume with the same number of processes"
            )
        engine.load_state(resume_from / "state")  # policy, optimizer (own shard), this process's RNG
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        start_step = state["step"]
        if main:
            truncate_metrics_after(run_dir / "metrics.jsonl", start_step)
            truncate_metrics_after(run_dir / "sampled_prompts.jsonl", start_step)
        log.info("resumed from %s at step %d", resume_from, start_step)

    logger = RunLogger(run_dir, cfg.logger, to_plain(cfg), cfg.trainer.max_steps, enabled=main)
    per_process = cfg.trainer.prompts_per_step // engine.world_size

    def evaluate(step: int) -> None:
        """Greedy evaluation (grit_exp.evaluation) into <run>/eval/step_<N>/: metrics.json, samples.jsonl,
        report.html with pictures of the parsed boxes; the flat metrics go to metrics.jsonl."""
        with engine.generation_model(policy) as model, engine.autocast():
            result = evaluate_model(cfg, adapter, model, judge, eval_sets, run_dir / "eval" / f"step_{step}", step=step)
        logger.log(step, result.flat, force=True)
        logger.log_samples(f"completions/step_{step}", result.records[:16])

    if untrained_metrics:
        logger.log(0, {f"init/{k.removeprefix('eval/')}": v for k, v in untrained_metrics.items()}, force=True)
    if start_step == 0 and cfg.trainer.eval_on_start and eval_sets:
        evaluate(0)

    def draw_round(drawn: list[list]) -> list:
        """This process's prompts of one round (`trainer.prompts_per_step` from the sampler), kept in `drawn`."""
        indices = sampler.next_indices(cfg.trainer.prompts_per_step)[rank * per_process : (rank + 1) * per_process]
        drawn.append([train_rows[i] for i in indices])
        return drawn[-1]

    for step in range(start_step + 1, cfg.trainer.max_steps + 1):
        drawn: list[list] = []  # one list per round: dynamic sampling (algorithm.dynamic_sampling) draws more
        rows = draw_round(drawn)
        if is_sft:
            metrics = sft_step(modules, rows)
        else:
            metrics = grpo_step(modules, rows, step, first_prompt_index=rank * per_process,
                                draw_round=functools.partial(draw_round, drawn))
        seen = [k for round_rows in drawn for keys in distributed.all_gather_object([r.key for r in round_rows])
                for k in keys]
        if main:
            with (run_dir / "sampled_prompts.jsonl").open("a") as f:
                f.write(json.dumps({"step": step, "keys": seen}) + "\n")
        metrics = distributed.average_metrics(metrics)
        logger.log(step, metrics)
        logger.progress(step, metrics)
        if eval_sets and (step % cfg.trainer.eval_every == 0 or step == cfg.trainer.max_steps):
            evaluate(step)
        if step % cfg.trainer.save_every == 0 or step == cfg.trainer.max_steps:
            state = {"scheduler": scheduler.state_dict(), "sampler": sampler.state_dict()}
            ckpt.save_checkpoint(engine, adapter, policy, checkpoints_dir, step, state, cfg.trainer.keep_last)
    logger.close()
    summary = summarize_run(run_dir) if main else {}
    summary["reference_model_built"] = reference is not None
    rollout.close()  # a vLLM engine leaves before the process group it shares
    engine.shutdown()
    return summary


def sft_step(m: StepModules, rows: list) -> dict[str, float]:
    """One supervised optimizer step on this process's rows, micro-batched like the GRPO update."""
    engine, t0 = m.engine, time.perf_counter()
    m.policy.train()
    loss_value = grad_norm = 0.0
    for sl in micro_batches(len(rows), m.cfg.trainer.micro_batch_size):
        part = rows[sl]
        with engine.accumulate(m.policy):
            with engine.autocast():
                loss = sft_step_loss(m.adapter, m.policy, part, m.cfg.prompt)
            w = len(part) / len(rows)
            engine.backward(loss * w)
            if engine.sync_gradients:
                grad_norm = engine.clip_grad_norm(m.policy, m.cfg.trainer.max_grad_norm)
            m.optimizer.step()
            m.optimizer.zero_grad(set_to_none=True)
        loss_value += float(loss.detach()) * w
    m.scheduler.step()
    return {"train/sft_loss": loss_value, "train/grad_norm": grad_norm, "train/lr": m.scheduler.get_last_lr()[0],
            "time/step_s": time.perf_counter() - t0}
