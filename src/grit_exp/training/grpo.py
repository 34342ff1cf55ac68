"""One GRPO-GR step: rollout -> rewards -> group advantages -> micro-batched policy update.

Each process handles whole prompt groups (its G completions never leave it), so advantages need
no gather; only gradients (averaged) and metrics are reduced across processes. With
num_iterations > 1 the same rollout is reused for several updates, with the clipped ratio against
the log-probs recorded before the first one.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from grit_exp.data.prompts import build_user_text
from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter
from grit_exp.policy.advantages import advantages_from_rewards
from grit_exp.policy.losses import policy_loss
from grit_exp.rewards import RewardContext, compute_rewards
from grit_exp.rollout.hf import HFRollout, Rollout
from grit_exp.training import distributed


@dataclass
class StepModules:
    adapter: ModelAdapter
    policy: torch.nn.Module
    reference: torch.nn.Module | None
    rollout: HFRollout
    judge: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    cfg: Any
    precision: Callable[[], AbstractContextManager] = contextlib.nullcontext  # see training.precision


def micro_batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _weight(aggregation: str, mb: Rollout, total_seqs: int, total_tokens: int) -> float:
    """Share of a micro-batch in the full-batch loss, so that summed micro-batch losses equal it."""
    if aggregation == "token_mean":
        return float(mb.completion_mask.sum()) / max(total_tokens, 1)
    return mb.completion_ids.shape[0] / total_seqs


@torch.no_grad()
def _logprobs(m: StepModules, model: torch.nn.Module, rollout: Rollout, size: int) -> torch.Tensor:
    parts = []
    for sl in micro_batches(len(rollout.rows), size):
        mb = rollout.select(sl)
        with m.precision():
            parts.append(m.adapter.completion_logprobs(model, mb.prompt, mb.completion_ids, mb.completion_mask))
    return torch.cat(parts, 0)


def _reference_logprobs(m: StepModules, rollout: Rollout, size: int) -> torch.Tensor:
    """Log-probs under the frozen reference: its own model, or (LoRA) the base with adapters disabled."""
    if m.reference is not None:
        return _logprobs(m, m.reference, rollout, size)
    if not hasattr(m.policy, "disable_adapter"):
        raise RuntimeError("algorithm.beta != 0 but no reference model was built and the policy has no LoRA adapters")
    with m.policy.disable_adapter():
        return _logprobs(m, m.policy, rollout, size)


def score_rollout(m: StepModules, rollout: Rollout):
    token_ids = [ids[mask.bool()].tolist() for ids, mask in zip(rollout.completion_ids, rollout.completion_mask, strict=True)]
    ctx = RewardContext(
        prompts=rollout.prompt.user_texts, token_ids=token_ids, judge=m.judge,
        counting_datasets=list(m.cfg.reward.counting_datasets),
    )
    return compute_rewards(m.cfg.reward, rollout.texts, rollout.rows, ctx)


def grpo_step(m: StepModules, rows: list[GritRow]) -> dict[str, float]:
    """Run one optimizer step on `rows` (this process's prompts); return this process's metrics."""
    cfg, alg = m.cfg, m.cfg.algorithm
    t0 = time.perf_counter()
    texts = [build_user_text(r.question, cfg.prompt, m.adapter.family) for r in rows]
    with m.precision():
        rollout = m.rollout.generate(m.policy, rows, texts, num_generations=alg.num_generations)
    t1 = time.perf_counter()
    breakdown = score_rollout(m, rollout)
    rewards = torch.tensor(breakdown.total, dtype=torch.float32)
    adv = advantages_from_rewards(rewards, alg.num_generations, alg.scale_rewards, alg.advantage_eps)
    t2 = time.perf_counter()

    size = cfg.trainer.micro_batch_size
    ref_logp = _reference_logprobs(m, rollout, size) if alg.beta != 0 else None
    old_logp = _logprobs(m, m.policy, rollout, size) if alg.num_iterations > 1 else None
    total_seqs, total_tokens = len(rollout.rows), int(rollout.completion_mask.sum())
    m.policy.train()
    losses, kls, clips = [], [], []
    for _ in range(alg.num_iterations):
        m.optimizer.zero_grad(set_to_none=True)
        loss_value = kl_value = clip_value = 0.0
        for sl in micro_batches(total_seqs, size):
            mb = rollout.select(sl)
            with m.precision():
                logp = m.adapter.completion_logprobs(m.policy, mb.prompt, mb.completion_ids, mb.completion_mask)
            out = policy_loss(
                logp,
                None if old_logp is None else old_logp[sl],
                None if ref_logp is None else ref_logp[sl],
                adv.values[sl].to(logp.device),
                mb.completion_mask,
                beta=alg.beta,
                epsilon_low=alg.epsilon_low,
                epsilon_high=alg.epsilon_high,
                aggregation=alg.loss_aggregation,
                max_completion_length=cfg.rollout.max_new_tokens,
            )
            w = _weight(alg.loss_aggregation, mb, total_seqs, total_tokens)
            (out.loss * w).backward()
            loss_value += float(out.loss.detach()) * w
            kl_value += float(out.kl) * mb.completion_ids.shape[0] / total_seqs
            clip_value += float(out.clip_fraction) * mb.completion_ids.shape[0] / total_seqs
        distributed.average_gradients(m.policy)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for p in m.policy.parameters() if p.requires_grad], cfg.trainer.max_grad_norm
        )
        m.optimizer.step()
        losses.append(loss_value)
        kls.append(kl_value)
        clips.append(clip_value)
    m.scheduler.step()
    t3 = time.perf_counter()

    metrics: dict[str, float] = {
        "train/reward": float(rewards.mean()),
        "train/reward_std": float(adv.group_std.mean()),
        "train/advantage_abs": float(adv.values.abs().mean()),
        "train/frac_zero_std": adv.frac_zero_std,
        "train/loss": losses[-1],
        "train/kl": kls[-1],
        "train/clip_fraction": clips[-1],
        "train/grad_norm": float(grad_norm),
        "train/completion_tokens": float(rollout.completion_mask.sum(1).float().mean()),
        "train/lr": m.scheduler.get_last_lr()[0],
        "train/judge_failures": float(breakdown.judge_failures),
        "time/rollout_s": t1 - t0,
        "time/reward_s": t2 - t1,
        "time/update_s": t3 - t2,
        "time/step_s": t3 - t0,
    }
    for term, values in breakdown.per_term.items():
        metrics[f"train/reward/{term}"] = sum(values) / len(values)
    for dataset, means in breakdown.per_dataset.items():
        for name, value in means.items():
            metrics[f"train/{dataset}/{name}"] = value
    return metrics
