"""Supervised fine-tuning on gold grounded chains: the `algorithm=sft` step and the cached warm start.

The target of a row is its gold chain rendered in the model family's box frame (the geometry
comes from the processed prompt, so Qwen targets use the resized-input pixels the model sees),
followed by the end-of-turn token; with zoom turns on (`rollout.zoom.enabled`) rows with gold boxes are
trained as zoom conversations instead (`algorithm/sft_zoom.py`: the tool turn masked out). The loss is the mean negative log-likelihood of target tokens.
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


def sft_step_loss(adapter: ModelAdapter, model: torch.nn.Module, rows: list[GritRow], prompt_cfg: Any,
                  zoom: Any = None) -> torch.Tensor:
    """Mean NLL of the target tokens; with `zoom` (rollout.zoom, on) the targets are zoom conversations."""
    if zoom is not None:
        from grit_exp.algorithm.sft_zoom import zoom_sft_loss_inputs

        logp, mask = zoom_sft_loss_inputs(adapter, model, rows, prompt_cfg, zoom)
        return sft_loss(logp, mask)
    prompt, ids, mask = sft_batch(adapter, rows, prompt_cfg)
    device = next(model.parameters()).device
    logp = adapter.completion_logprobs(model, prompt.to(device), ids.to(device), mask.to(device))
    return sft_loss(logp, mask.to(device))


def sft_step(m: StepModules, rows: list[GritRow]) -> dict[str, float]:
    """One supervised optimizer step on this process's rows, micro-batched like the GRPO update."""
    engine, t0 = m.engine, time.perf_counter()
    m.policy.train()
    loss_value = grad_norm = 0.0
    for sl in micro_batches(len(rows), m.cfg.trainer.micro_batch_size):
        part = rows[sl]
        with engine.accumulate(m.policy):
            with engine.autocast():
                loss = sft_step_loss(m.adapter, m.policy, part, m.cfg.prompt, zoom_of(m.cfg))
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
    `sft_step_loss`."""
    from grit_exp.training.sampler import PromptSampler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
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
