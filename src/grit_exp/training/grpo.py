"""One GRPO-GR step: rollout -> rewards -> group advantages -> micro-batched policy update.

Each process generates and scores whole prompt groups; the rewards of all processes are gathered
so that advantages (and `scale_rewards=batch`'s std) are those of the global batch, and
`token_mean` divides by the global number of completion tokens: a step's result does not depend on
how many processes share it. Completions are sampled from per-completion seeds
(`rollout/seeded_sampling.py`) for the same reason. Gradients, precision, accumulation and clipping
belong to the engine (`training/engine.py`). With num_iterations > 1 the same rollout is reused for
several updates, with the clipped ratio against the log-probs recorded before the first one.
"""

from __future__ import annotations

import time
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
from grit_exp.rollout.judge_overlap import JudgeAhead, overlaps_generation
from grit_exp.rollout.seeded_sampling import completion_seed
from grit_exp.training.engine import TrainingEngine


@dataclass
class StepModules:
    adapter: ModelAdapter
    policy: torch.nn.Module  # as prepared by the engine (DDP / DeepSpeed wrapper, or the bare model)
    reference: torch.nn.Module | None  # None: beta == 0, or LoRA (the base with adapters disabled)
    rollout: HFRollout
    judge: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    cfg: Any
    engine: TrainingEngine


def micro_batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def logprob_temperature(cfg: Any) -> float:
    """`algorithm.logprob_temperature`: "sampling" scores the policy that sampled (logits / T, as TRL);
    "one" uses raw logits (the released GRIT code)."""
    return float(cfg.rollout.temperature) if cfg.algorithm.logprob_temperature == "sampling" else 1.0


def _micro_weight(aggregation: str, mb: Rollout, local_seqs: int, global_tokens: float, world_size: int) -> float:
    """Share of a micro-batch in this process's loss, so that the engine's average over processes of
    the summed micro-batch losses is the loss of the global batch."""
    if aggregation == "token_mean":
        return float(mb.completion_mask.sum()) * world_size / max(global_tokens, 1.0)
    return mb.completion_ids.shape[0] / local_seqs


@torch.no_grad()
def _logprobs(m: StepModules, model: torch.nn.Module, batches: list[Rollout]) -> list[torch.Tensor]:
    parts = []
    for mb in batches:
        with m.engine.autocast():
            parts.append(m.adapter.completion_logprobs(model, mb.prompt, mb.completion_ids, mb.completion_mask,
                                                       temperature=logprob_temperature(m.cfg)))
    return parts


def _reference_logprobs(m: StepModules, batches: list[Rollout]) -> list[torch.Tensor]:
    """Log-probs under the frozen reference: its own model, or (LoRA) the base with adapters disabled."""
    if m.reference is not None:
        return _logprobs(m, m.reference, batches)
    policy = m.engine.unwrap(m.policy)
    if not hasattr(policy, "disable_adapter"):
        raise RuntimeError("algorithm.beta != 0 but no reference model was built and the policy has no LoRA adapters")
    with policy.disable_adapter():
        return _logprobs(m, policy, batches)


def score_rollout(m: StepModules, rollout: Rollout, judge: Any = None):
    """Rewards of the rollout; `judge` (default `m.judge`) may hold answers judged during generation."""
    token_ids = [ids[mask.bool()].tolist() for ids, mask in zip(rollout.completion_ids, rollout.completion_mask, strict=True)]
    ctx = RewardContext(
        prompts=rollout.prompt.user_texts, token_ids=token_ids, judge=judge or m.judge,
        counting_datasets=list(m.cfg.reward.counting_datasets),
    )
    return compute_rewards(m.cfg.reward, rollout.texts, rollout.rows, ctx)


def grpo_step(m: StepModules, rows: list[GritRow], step: int, first_prompt_index: int) -> dict[str, float]:
    """One optimizer step on `rows` (this process's prompts, global indices from `first_prompt_index`
    within the step); return the step's metrics, already global where they say so."""
    cfg, alg, engine = m.cfg, m.cfg.algorithm, m.engine
    G = alg.num_generations
    t0 = time.perf_counter()
    texts = [build_user_text(r.question, cfg.prompt, m.adapter.family) for r in rows]
    seeds = [completion_seed(cfg.seed, step, first_prompt_index + i, j) for i in range(len(rows)) for j in range(G)]
    # a network judge starts on each completion's answer as soon as it is generated (rollout/judge_overlap.py)
    ahead = (JudgeAhead(m.judge, cfg.reward, m.adapter, [r for r in rows for _ in range(G)],
                        [t for t in texts for _ in range(G)]) if overlaps_generation(m.judge, len(rows) * G) else None)
    try:
        with engine.generation_model(m.policy) as generator, engine.autocast():
            rollout = m.rollout.generate(generator, rows, texts, num_generations=G, completion_seeds=seeds,
                                         judge_ahead=ahead)
        t1 = time.perf_counter()
        breakdown = score_rollout(m, rollout, judge=ahead.answered if ahead else None)
    finally:
        if ahead is not None:
            ahead.close()
    local_rewards = torch.tensor(breakdown.total, dtype=torch.float64)
    global_rewards = engine.gather(local_rewards)  # rank order = prompt order of the step
    adv = advantages_from_rewards(global_rewards, G, alg.scale_rewards, alg.advantage_eps)
    local = slice(engine.rank * len(local_rewards), (engine.rank + 1) * len(local_rewards))
    advantages = adv.values[local]
    t2 = time.perf_counter()

    local_seqs = len(rollout.rows)
    slices = micro_batches(local_seqs, cfg.trainer.micro_batch_size)
    # built once, shared by the reference, old-policy and policy passes; each trimmed to its own longest completion
    batches = [rollout.select(sl) for sl in slices]
    ref_logp = _reference_logprobs(m, batches) if alg.beta != 0 else None
    t_ref = time.perf_counter()
    old_logp = _logprobs(m, m.policy, batches) if alg.num_iterations > 1 else None
    global_tokens = engine.sum(int(rollout.completion_mask.sum()))
    m.policy.train()
    loss_value = kl_value = clip_value = grad_norm = 0.0
    for _ in range(alg.num_iterations):
        loss_value = kl_value = clip_value = 0.0
        for i, (sl, mb) in enumerate(zip(slices, batches, strict=True)):
            with engine.accumulate(m.policy):
                with engine.autocast():
                    logp = m.adapter.completion_logprobs(m.policy, mb.prompt, mb.completion_ids, mb.completion_mask,
                                                         temperature=logprob_temperature(cfg))
                out = policy_loss(
                    logp,
                    None if old_logp is None else old_logp[i],
                    None if ref_logp is None else ref_logp[i],
                    advantages[sl].to(logp.device),
                    mb.completion_mask,
                    beta=alg.beta,
                    epsilon_low=alg.epsilon_low,
                    epsilon_high=alg.epsilon_high,
                    aggregation=alg.loss_aggregation,
                    max_completion_length=cfg.rollout.max_new_tokens,
                )
                w = _micro_weight(alg.loss_aggregation, mb, local_seqs, global_tokens, engine.world_size)
                engine.backward(out.loss * w)
                if engine.sync_gradients:
                    grad_norm = engine.clip_grad_norm(m.policy, cfg.trainer.max_grad_norm)
                m.optimizer.step()
                m.optimizer.zero_grad(set_to_none=True)
            loss_value += float(out.loss.detach()) * w
            kl_value += float(out.kl) * mb.completion_ids.shape[0] / local_seqs
            clip_value += float(out.clip_fraction) * mb.completion_ids.shape[0] / local_seqs
    m.scheduler.step()
    t3 = time.perf_counter()

    metrics: dict[str, float] = {
        "train/reward": float(global_rewards.mean()),
        "train/reward_std": float(adv.group_std.mean()),
        "train/advantage_abs": float(adv.values.abs().mean()),
        "train/frac_zero_std": adv.frac_zero_std,
        # how the loss was normalised: over the global batch (all processes)
        "train/global_completions": float(len(global_rewards)),
        "train/global_completion_tokens": global_tokens,
        "train/loss": loss_value,
        "train/kl": kl_value,
        "train/clip_fraction": clip_value,
        "train/grad_norm": grad_norm,
        "train/completion_tokens": float(rollout.completion_mask.sum(1).float().mean()),
        "train/lr": m.scheduler.get_last_lr()[0],
        "train/judge_failures": float(breakdown.judge_failures),
        "time/rollout_s": t1 - t0,
        "time/reward_s": t2 - t1,
        "time/update_s": t3 - t2,
        "time/reference_s": t_ref - t2,  # part of update_s
        "time/step_s": t3 - t0,
    }
    if alg.scale_rewards == "batch":
        metrics["train/reward_batch_std_global"] = float(global_rewards.std(unbiased=True))
    for term, values in breakdown.per_term.items():
        metrics[f"train/reward/{term}"] = sum(values) / len(values)
    for dataset, means in breakdown.per_dataset.items():
        for name, value in means.items():
            metrics[f"train/{dataset}/{name}"] = value
    return metrics
