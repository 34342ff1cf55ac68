"""A training run, written out (no framework trainer): build -> resume -> loop.

`build_run` builds everything from the config (engine, run directory, data, adapter, judge, the cached
warm start, policy and reference, optimizer, scheduler, sampler, rollout), `resume_run` loads the
checkpoint to continue from, and `train_loop` runs the steps: prompts from the sampler -> `grpo_step`
(`algorithm/grpo.py`) or `sft_step` (`algorithm/sft.py`) -> metrics -> periodic evaluation and atomic
checkpoints. Everything that depends on the hardware (devices, DDP / DeepSpeed, precision,
accumulation, sharded state) goes through the `TrainingEngine`. Rank 0 decides the run directory and
the checkpoint to resume from and broadcasts them; only rank 0 writes logs, metrics and the model
directory, and trains the warm start while the others wait outside any collective. A collective that
waits `cluster.timeout_s` for a peer ends the run with one line naming the step and the rank. At the end it prints a before/after table of the evaluation metrics and writes
`reward_curve.png` into the run directory. Left out: validating the config and mapping SLURM's
environment (the entry point `grit_exp.train` does both, once), and the step's algorithm.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grit_exp.algorithm.grpo import grpo_step
from grit_exp.algorithm.sft import cached_warm_start, sft_step, warm_start_dir
from grit_exp.algorithm.step_modules import StepModules
from grit_exp.api_keys import to_plain
from grit_exp.cluster import collectives as distributed
from grit_exp.cluster.engine import TrainingEngine
from grit_exp.config import TrainConfig
from grit_exp.data.reader import load_dataset_splits
from grit_exp.data.schema import GritRow
from grit_exp.errors import GritError
from grit_exp.evaluation.runner import evaluate_model
from grit_exp.judge import build_judge
from grit_exp.models import build_adapter
from grit_exp.rollout.factory import build_rollout
from grit_exp.run_info import write_run_info
from grit_exp.training import checkpoint as ckpt
from grit_exp.training.logger import RunLogger, truncate_metrics_after
from grit_exp.training.optimizer import build_optimizer
from grit_exp.training.sampler import PromptSampler
from grit_exp.training.summary import summarize_run

log = logging.getLogger("grit_exp.train")


def seed_everything(seed: int) -> None:
    """Python's, numpy's and torch's generators (deterministic kernels: the engine, `trainer.deterministic`)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_scheduler(optimizer: torch.optim.Optimizer, trainer: Any) -> torch.optim.lr_scheduler.LRScheduler:
    """transformers' schedule (`trainer.lr_scheduler`: cosine or constant, after `warmup_steps`), one
    step per optimizer step."""
    from transformers import get_scheduler

    name = "constant_with_warmup" if trainer.lr_scheduler == "constant" else trainer.lr_scheduler
    return get_scheduler(name, optimizer, num_warmup_steps=trainer.warmup_steps,
                         num_training_steps=max(1, trainer.max_steps))


def accumulation_steps(cfg: TrainConfig, world_size: int) -> int:
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


def evaluate_untrained(cfg: TrainConfig, adapter: Any, judge: Any, eval_sets: dict, device: torch.device,
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


def build_policy(cfg: TrainConfig, adapter: Any, engine: TrainingEngine, start_path: str | None) -> torch.nn.Module:
    """The trainable policy: fp32 master weights (LoRA: the frozen base in model.dtype, fp32 adapters)."""
    lora = cfg.model.lora.enabled
    policy = adapter.load_model(engine.device, path=start_path, dtype=None if lora else "float32")
    if lora:
        with torch.random.fork_rng():  # the same adapter initialisation on every process
            torch.manual_seed(cfg.seed)
            policy = apply_lora(policy, cfg.model.lora)
    return policy


@dataclass
class RunParts:
    """Everything `build_run` builds on this process, in the order it builds them."""

    cfg: TrainConfig
    run_dir: Path  # rank 0's, on every process
    engine: TrainingEngine
    train_rows: list[GritRow]
    eval_sets: dict[str, list[GritRow]]
    resume_from: Path | None  # the checkpoint to resume from (rank 0's choice), or None: a fresh run
    untrained_metrics: dict[str, float]  # the model before the warm start; empty: not evaluated
    modules: StepModules  # adapter, policy, reference, rollout, judge, optimizer, scheduler, cfg, engine
    sampler: PromptSampler


def run_training(cfg: TrainConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Train on a composed, validated config (`grit_exp.train` validates it) into `run_dir` (default:
    Hydra's); return the end-of-run summary."""
    parts = build_run(cfg, run_dir)
    with distributed.timeouts_reported("resuming", parts.engine.timeout_s):
        start_step = resume_run(parts)
    # opened once resume_run has cut metrics.jsonl back to the checkpoint's step
    logger = RunLogger(parts.run_dir, cfg.logger, to_plain(cfg), cfg.trainer.max_steps, enabled=parts.engine.is_main)
    train_loop(parts, logger, start_step)
    logger.close()
    summary = summarize_run(parts.run_dir) if parts.engine.is_main else {}
    summary["reference_model_built"] = parts.modules.reference is not None
    # Every process leaves together, after rank 0's summary: once (1 in ~4 runs of the 2-process ZeRO-3
    # dynamic-sampling test) rank 1 aborted at exit ("terminate called without an active exception") after
    # ending its process group while rank 0 was still writing the summary.
    parts.engine.barrier()
    parts.modules.rollout.close()  # a vLLM engine leaves before the process group it shares
    parts.engine.shutdown()
    return summary


def build_run(cfg: TrainConfig, run_dir: Path | None = None) -> RunParts:
    """Engine, run directory, data, model adapter, judge, warm start, policy (and reference), optimizer,
    scheduler, sampler and rollout; rank 0 first wherever something is generated or cached."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=accumulation_steps(cfg, world),
                            micro_batch_size=cfg.trainer.micro_batch_size)
    with distributed.timeouts_reported("start-up", engine.timeout_s):
        return _build_run(cfg, engine, Path(run_dir) if run_dir else _hydra_run_dir())


def _build_run(cfg: TrainConfig, engine: TrainingEngine, own_run_dir: Path) -> RunParts:
    run_dir = agree_on_run_dir(engine, own_run_dir)
    seed_everything(cfg.seed + engine.rank)
    train_rows, eval_sets = load_data(cfg, engine, run_dir)
    with engine.whole_model_loading():  # building a tiny model is no collective, even under ZeRO-3
        adapter = build_adapter(cfg.model, cache_dir=cfg.paths.cache_dir) if engine.is_main else None  # rank 0 builds a tiny model first, once
        engine.barrier()
        adapter = adapter or build_adapter(cfg.model, cache_dir=cfg.paths.cache_dir)
    judge = build_judge(cfg.judge)
    resume_from = ckpt.resolve_resume(cfg.trainer.resume, run_dir / "checkpoints") if engine.is_main else None
    resume_from = engine.broadcast_object(resume_from)

    untrained_metrics: dict[str, float] = {}
    start_path = None
    if cfg.algorithm.name != "sft" and cfg.trainer.warm_start_sft_steps > 0:
        with engine.whole_model_loading():
            if cfg.trainer.eval_on_start and eval_sets and resume_from is None:
                untrained_metrics = evaluate_untrained(cfg, adapter, judge, eval_sets, engine.device,
                                                       run_dir / "eval" / "untrained")
            start_path = str(warm_start(cfg, engine, adapter, train_rows))

    policy = build_policy(cfg, adapter, engine, start_path)
    reference = None
    if cfg.algorithm.name != "sft" and cfg.algorithm.beta != 0 and not cfg.model.lora.enabled:
        reference = engine.prepare_frozen(adapter.load_model("cpu", path=start_path))
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, cfg.trainer.learning_rate, cfg.trainer.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    policy, optimizer = engine.prepare(policy, optimizer)
    sampler = PromptSampler(len(train_rows), cfg.seed)
    rollout = build_rollout(adapter, cfg.rollout, cfg.seed)  # hf or vllm
    modules = StepModules(adapter, policy, reference, rollout, judge, optimizer, scheduler, cfg, engine)
    return RunParts(cfg, run_dir, engine, train_rows, eval_sets, resume_from, untrained_metrics, modules, sampler)


def load_data(cfg: TrainConfig, engine: TrainingEngine,
              run_dir: Path) -> tuple[list[GritRow], dict[str, list[GritRow]]]:
    """The train rows and eval sets (rank 0 generates / checks them first); rank 0 writes run_info.json
    and engine.json."""
    if engine.is_main:
        load_dataset_splits(cfg.dataset, cfg.seed)  # rank 0 generates / checks the data first
    engine.barrier()
    train_rows, eval_sets = load_dataset_splits(cfg.dataset, cfg.seed)
    if engine.is_main:
        write_run_info(run_dir, cfg, [*train_rows, *(r for rows in eval_sets.values() for r in rows)])
        (run_dir / "engine.json").write_text(json.dumps(engine.describe(), indent=2))
    return train_rows, eval_sets


def warm_start(cfg: TrainConfig, engine: TrainingEngine, adapter: Any, train_rows: list[GritRow]) -> Path:
    """The cached SFT warm start's model directory (`trainer.warm_start_sft_steps`): rank 0 trains it, once
    (fp32 master weights, the engine's autocast). The other processes wait for the finished directory on
    the filesystem, in no collective: a warm start may take longer than `cluster.timeout_s`. The cache must
    be one that every process sees (`paths.cache_dir` on a shared filesystem across nodes); that is checked
    first, so that a process never waits for a directory it cannot see."""
    cache_dir = Path(cfg.paths.cache_dir).expanduser()
    out = warm_start_dir(cfg, train_rows, cache_dir)
    failed = out.with_name(out.name + ".failed")
    if engine.world_size > 1:
        _check_shared_directory(engine, out.parent)
        if engine.is_main:
            failed.unlink(missing_ok=True)  # an earlier attempt's; removed before the others look
        engine.barrier()
    if not engine.is_main:
        distributed.wait_for_file(out / "config.json", failed, f"the warm start ({out})")
    else:
        try:
            cached_warm_start(cfg, adapter, train_rows, cache_dir, engine.device, engine.autocast)
        except BaseException as err:
            if engine.world_size > 1:
                failed.write_text(f"{type(err).__name__}: {err}".splitlines()[0] + "\n")
            raise
    engine.barrier()
    return out


def _check_shared_directory(engine: TrainingEngine, directory: Path) -> None:
    """GritError on every process unless each one sees a file that rank 0 writes into `directory`."""
    probe = None
    if engine.is_main:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".visible-", dir=directory)
        os.close(fd)
    probe = Path(engine.broadcast_object(probe))
    seen = distributed.all_gather_object(probe.exists())
    if engine.is_main:
        probe.unlink()
    if not all(seen):
        blind = [r for r, ok in enumerate(seen) if not ok]
        raise GritError(f"paths.cache_dir: ranks {blind} do not see {directory}, where rank 0 writes the warm start; "
                        "set paths.cache_dir (GRIT_EXP_CACHE) to a directory on a filesystem that every node shares")


def resume_run(parts: RunParts) -> int:
    """Load the checkpoint `parts.resume_from` (policy, optimizer shard, RNG, scheduler, sampler) and cut the
    run's jsonl logs back to its step; return the step to continue after (0: a fresh run)."""
    if parts.resume_from is None:
        return 0
    resume_from, engine = parts.resume_from, parts.engine
    state = ckpt.load_trainer_state(resume_from)
    if state["world_size"] != engine.world_size:
        raise GritError(
            f"{resume_from} was written by {state['world_size']} processes, this run has {engine.world_size}: "
            "resume with the same number of processes"
        )
    engine.load_state(resume_from / "state")  # policy, optimizer (own shard), this process's RNG
    parts.modules.scheduler.load_state_dict(state["scheduler"])
    parts.sampler.load_state_dict(state["sampler"])
    start_step = state["step"]
    if engine.is_main:
        truncate_metrics_after(parts.run_dir / "metrics.jsonl", start_step)
        truncate_metrics_after(parts.run_dir / "sampled_prompts.jsonl", start_step)
    log.info("resumed from %s at step %d", resume_from, start_step)
    return start_step


def train_loop(parts: RunParts, logger: RunLogger, start_step: int) -> None:
    """Steps start_step + 1 .. trainer.max_steps: draw prompts, one GRPO (or SFT) step, log the metrics
    averaged over processes, evaluate and save every so many steps."""
    cfg, engine = parts.cfg, parts.engine
    if parts.untrained_metrics:
        logger.log(0, {f"init/{k.removeprefix('eval/')}": v for k, v in parts.untrained_metrics.items()}, force=True)
    if start_step == 0 and cfg.trainer.eval_on_start and parts.eval_sets:
        with distributed.timeouts_reported("the evaluation before step 1", engine.timeout_s):
            evaluate_step(parts, logger, 0)
    for step in range(start_step + 1, cfg.trainer.max_steps + 1):
        # a collective that waits cluster.timeout_s for a peer ends the run naming the step and this rank
        with distributed.timeouts_reported(f"training step {step}", engine.timeout_s):
            train_step(parts, logger, step)


def train_step(parts: RunParts, logger: RunLogger, step: int) -> None:
    """One step of the loop: prompts, the GRPO (or SFT) step, metrics, and the evaluation and checkpoint due."""
    cfg, engine, m = parts.cfg, parts.engine, parts.modules
    per_process = cfg.trainer.prompts_per_step // engine.world_size
    drawn: list[list[GritRow]] = []  # one list per round: dynamic sampling (algorithm.dynamic_sampling) draws more
    rows = draw_round(parts, drawn)
    if cfg.algorithm.name == "sft":
        metrics = sft_step(m, rows)
    else:
        metrics = grpo_step(m, rows, step, first_prompt_index=engine.rank * per_process,
                            draw_round=functools.partial(draw_round, parts, drawn))
    seen = [k for round_rows in drawn for keys in distributed.all_gather_object([r.key for r in round_rows])
            for k in keys]
    if engine.is_main:
        with (parts.run_dir / "sampled_prompts.jsonl").open("a") as f:
            f.write(json.dumps({"step": step, "keys": seen}) + "\n")
    metrics = distributed.average_metrics(metrics)
    logger.log(step, metrics)
    logger.progress(step, metrics)
    if parts.eval_sets and (step % cfg.trainer.eval_every == 0 or step == cfg.trainer.max_steps):
        evaluate_step(parts, logger, step)
    if step % cfg.trainer.save_every == 0 or step == cfg.trainer.max_steps:
        state = {"scheduler": m.scheduler.state_dict(), "sampler": parts.sampler.state_dict()}
        ckpt.save_checkpoint(engine, m.adapter, m.policy, parts.run_dir / "checkpoints", step, state,
                             cfg.trainer.keep_last)


def draw_round(parts: RunParts, drawn: list[list[GritRow]]) -> list[GritRow]:
    """This process's prompts of one round (`trainer.prompts_per_step` from the sampler), kept in `drawn`."""
    engine, per_process = parts.engine, parts.cfg.trainer.prompts_per_step // parts.engine.world_size
    indices = parts.sampler.next_indices(parts.cfg.trainer.prompts_per_step)
    drawn.append([parts.train_rows[i] for i in indices[engine.rank * per_process : (engine.rank + 1) * per_process]])
    return drawn[-1]


def evaluate_step(parts: RunParts, logger: RunLogger, step: int) -> None:
    """Greedy evaluation (grit_exp.evaluation) into <run>/eval/step_<N>/: metrics.json, samples.jsonl,
    report.html with pictures of the parsed boxes; the flat metrics go to metrics.jsonl."""
    m = parts.modules
    with parts.engine.generation_model(m.policy) as model, parts.engine.autocast():
        result = evaluate_model(parts.cfg, m.adapter, model, m.judge, parts.eval_sets,
                                parts.run_dir / "eval" / f"step_{step}", step=step)
    logger.log(step, result.flat, force=True)
    logger.log_samples(f"completions/step_{step}", result.records[:16])
