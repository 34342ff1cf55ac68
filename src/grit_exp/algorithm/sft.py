"""Supervised fine-tuning on gold grounded chains: the `algorithm=sft` step and the cached warm start.

The target of a row is its gold chain rendered in the model family's box frame (the geometry
comes from the processed prompt, so Qwen targets use the resized-input pixels the model sees),
followed by the end-of-turn token; with zoom turns on (`rollout.zoom.enabled`) rows with gold boxes are
trained as zoom conversations instead (`algorithm/sft_zoom.py`: the tool turn masked out). The loss is the mean negative
log-likelihood of the target tokens (in a training step: of the global batch, every process's rows).
`sft_step` is one optimizer step of a training run (through the engine, micro-batched like the GRPO
update); `cached_warm_start` trains a plain SFT loop (`run_sft`) before GRPO and caches its weights by a
fingerprint of what determines them. Left out: drawing the rows (`training/run.py`), the loss maths
(`algorithm/losses.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import get_scheduler

from grit_exp.algorithm.losses import sft_loss
from grit_exp.algorithm.step_modules import StepModules, micro_batches
from grit_exp.data.gold_chain import format_gold_chain
from grit_exp.data.prompts import build_user_text
from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter
from grit_exp.training.optimizer import build_optimizer

log = logging.getLogger(__name__)


def sft_batch(adapter: ModelAdapter, rows: list[GritRow], prompt_cfg: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """(prompt batch, target ids [B, T] right-padded, target mask [B, T])."""
    missing = [r.source for r in rows if r.gold is None]
    if missing:
        raise ValueError(f"SFT needs gold chains; these rows have none: {', '.join(missing[:5])}")
    texts = [build_user_text(r.question, prompt_cfg, adapter.family) for r in rows]
    prompt = adapter.build_prompt_batch(rows, texts)
    end = adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")
    targets = [
        adapter.tokenizer(format_gold_chain(r, g), add_special_tokens=False)["input_ids"] + [end]
        for r, g in zip(rows, prompt.geometries, strict=True)
    ]
    length = max(len(t) for t in targets)
    ids = torch.full((len(rows), length), adapter.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, t in enumerate(targets):
        ids[i, : len(t)] = torch.tensor(t)
        mask[i, : len(t)] = 1
    return prompt, ids, mask


def zoom_of(cfg: Any) -> Any:
    """`cfg.rollout.zoom` when zoom turns are on (the SFT targets then hold a zoom turn), else None."""
    zoom = getattr(getattr(cfg, "rollout", None), "zoom", None)
    return zoom if zoom is not None and zoom.enabled else None


@dataclass
class SftInputs:
    """One batch of SFT targets, built before any forward (so a step can count its target tokens first)."""

    prompt: Any  # PromptBatch
    ids: torch.Tensor  # [B, T] target ids, right-padded
    mask: torch.Tensor  # [B, T] 1 on the tokens trained on (model-written)
    tool: Any = None  # ToolTurnInputs of zoom conversations, else None


def sft_inputs(adapter: ModelAdapter, rows: list[GritRow], prompt_cfg: Any, zoom: Any = None) -> SftInputs:
    """The targets of `rows`; with `zoom` (rollout.zoom, on) zoom conversations (`algorithm/sft_zoom.py`)."""
    if zoom is not None:
        from grit_exp.algorithm.sft_zoom import zoom_sft_batch

        return SftInputs(*zoom_sft_batch(adapter, rows, prompt_cfg, zoom))
    return SftInputs(*sft_batch(adapter, rows, prompt_cfg))


def sft_logprobs(adapter: ModelAdapter, model: torch.nn.Module, batch: SftInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs [B, T] of the targets under `model`, the mask of the tokens trained on), on the model's device."""
    device = next(model.parameters()).device
    tool = batch.tool
    if tool is not None:
        from grit_exp.models.zoom_logprobs import ToolTurnInputs

        tool = ToolTurnInputs(tool.tool_mask.to(device), [None if p is None else p.to(device) for p in tool.pixel_values],
                              [None if g is None else g.to(device) for g in tool.image_grid_thw])
    mask = batch.mask.to(device)
    logp = adapter.completion_logprobs(model, batch.prompt.to(device), batch.ids.to(device), mask, tool_turns=tool)
    return logp, mask


def sft_step_loss(adapter: ModelAdapter, model: torch.nn.Module, rows: list[GritRow], prompt_cfg: Any,
                  zoom: Any = None) -> torch.Tensor:
    """Mean NLL of the target tokens of `rows`; `zoom`: see `sft_inputs`."""
    return sft_loss(*sft_logprobs(adapter, model, sft_inputs(adapter, rows, prompt_cfg, zoom)))


def sft_step(m: StepModules, rows: list[GritRow]) -> dict[str, float]:
    """One supervised optimizer step on this process's rows, micro-batched like the GRPO update.

    The loss is the mean NLL over the target tokens of the global batch (every process's rows): each
    micro-batch's token mean is weighted by its share of the global token count (times the number of
    processes, which the engine's gradient average divides out), so 2 processes train exactly as 1 on the
    same rows, whatever the micro-batch size and however long each row's target is."""
    engine, t0 = m.engine, time.perf_counter()
    m.policy.train()
    batches = [sft_inputs(m.adapter, rows[sl], m.cfg.prompt, zoom_of(m.cfg))
               for sl in micro_batches(len(rows), m.cfg.trainer.micro_batch_size)]
    global_tokens = max(engine.sum(sum(int(b.mask.sum()) for b in batches)), 1.0)
    nll_sum = grad_norm = 0.0
    for batch in batches:
        with engine.accumulate(m.policy):
            with engine.autocast():
                loss = sft_loss(*sft_logprobs(m.adapter, m.policy, batch))
            tokens = int(batch.mask.sum())
            engine.backward(loss * (tokens * engine.world_size / global_tokens))
            if engine.sync_gradients:
                grad_norm = engine.clip_grad_norm(m.policy, m.cfg.trainer.max_grad_norm)
            m.optimizer.step()
            m.optimizer.zero_grad(set_to_none=True)
        nll_sum += float(loss.detach()) * tokens
    m.scheduler.step()
    return {"train/sft_loss": engine.sum(nll_sum) / global_tokens, "train/grad_norm": grad_norm,
            "train/lr": m.scheduler.get_last_lr()[0], "time/step_s": time.perf_counter() - t0}


def warm_start_fingerprint(cfg: Any, rows: list[GritRow]) -> str:
    """What determines the warm-start weights: model, prompt, data, steps, optimiser, seed."""
    parts = {
        "model": [cfg.model.family, cfg.model.path, cfg.model.tiny_builder],
        "prompt": [cfg.prompt.question_prefix, cfg.prompt.suffix],
        "rows": hashlib.sha256("".join(f"{r.key}{r.gold}" for r in rows).encode()).hexdigest(),
        "trainer": [cfg.trainer.warm_start_sft_steps, cfg.trainer.warm_start_learning_rate, cfg.trainer.warm_start_batch_size],
        "seed": cfg.seed,
    }
    zoom = zoom_of(cfg)
    if zoom is not None:  # zoom conversations as targets (absent otherwise: the single-turn fingerprint is unchanged)
        parts["zoom"] = [zoom.open_tag, zoom.close_tag, str(zoom.trigger_format), zoom.padding, zoom.min_size,
                         zoom.crop_min_pixels, zoom.crop_max_pixels, zoom.turn_template, zoom.reply_text]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_sft(adapter: ModelAdapter, model: torch.nn.Module, rows: list[GritRow], prompt_cfg: Any, *,
            steps: int, lr: float, batch_size: int, seed: int,
            precision: Callable[[], AbstractContextManager] = contextlib.nullcontext, zoom: Any = None) -> list[float]:
    """Plain SFT loop (AdamW, constant lr after a short warmup); returns the loss per step. `zoom`: see
    `sft_inputs`."""
    from grit_exp.training.sampler import PromptSampler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, lr, 0.0)
    scheduler = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=max(1, steps // 10))
    sampler = PromptSampler(len(rows), seed)
    model.train()
    losses = []
    for step in range(steps):
        batch = [rows[i] for i in sampler.next_indices(batch_size)]
        with precision():
            loss = sft_step_loss(adapter, model, batch, prompt_cfg, zoom)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if step % 50 == 0 or step == steps - 1:
            log.info("warm start step %d/%d: loss %.4f", step + 1, steps, losses[-1])
    return losses


def warm_start_dir(cfg: Any, rows: list[GritRow], cache_dir: Path) -> Path:
    """Where the warm start of `cfg` on `rows` is cached (complete once its config.json exists)."""
    return cache_dir / "warm_start" / warm_start_fingerprint(cfg, rows)


def cached_warm_start(cfg: Any, adapter: ModelAdapter, rows: list[GritRow], cache_dir: Path,
                      device: torch.device | str = "cpu",
                      precision: Callable[[], AbstractContextManager] = contextlib.nullcontext) -> Path:
    """Return a checkpoint directory holding the warm-started model; train it only if not cached.

    The weights train as fp32 masters (`precision`: the engine's autocast computes in bf16 where the run
    does), as the GRPO policy does, and are saved in fp32 (the policy starts from them as they are)."""
    out = warm_start_dir(cfg, rows, cache_dir)
    if (out / "config.json").exists():
        log.info("warm start: reusing cached %s", out)
        return out
    torch.manual_seed(cfg.seed)
    model = adapter.load_model(device, dtype="float32")
    losses = run_sft(
        adapter, model, rows, cfg.prompt, steps=cfg.trainer.warm_start_sft_steps,
        lr=cfg.trainer.warm_start_learning_rate, batch_size=cfg.trainer.warm_start_batch_size, seed=cfg.seed,
        precision=precision, zoom=zoom_of(cfg),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out.parent))
    try:
        adapter.save_model_dir(model, tmp)
        (tmp / "warm_start.json").write_text(json.dumps({"losses": losses}))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
