"""One GRPO-GR step: rollout -> rewards -> group advantages -> micro-batched policy update.

Each process generates and scores whole prompt groups; the rewards of all processes are gathered
so that advantages (and `scale_rewards=batch`'s std) are those of the global batch, and
`token_mean` divides by the global number of completion tokens: a step's result does not depend on
how many processes share it. Completions are sampled from per-completion seeds
(`rollout/seeded_sampling.py`) for the same reason. Gradients, precision, accumulation and clipping
belong to the engine (`training/engine.py`). With num_iterations > 1 the same rollout is reused for
several updates, with the clipped ratio against the log-probs recorded before the first one.
With `algorithm.dynamic_sampling` on, groups without reward spread are dropped and further rounds of
prompts are rolled out (`training/dynamic_sampling.py`); the advantages and the loss's normalisation
then count only the groups trained on, and a process with fewer of them runs zero-weight passes so
that all run the same number.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from grit_exp.algorithm.advantages import advantages_from_rewards
from grit_exp.algorithm.dynamic_sampling import InformativeGroups, groups_with_spread, training_rollout
from grit_exp.algorithm.losses import policy_loss
from grit_exp.cluster.engine import TrainingEngine
from grit_exp.data.prompts import build_user_text
from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter
from grit_exp.rewards import RewardBreakdown, RewardContext, compute_rewards
from grit_exp.rollout.judge_overlap import JudgeAhead, overlaps_generation
from grit_exp.rollout.seeded_sampling import completion_seed
from grit_exp.rollout.types import Rollout, RolloutEngine


@dataclass
class StepModules:
    adapter: ModelAdapter
    policy: torch.nn.Module  # as prepared by the engine (DDP / DeepSpeed wrapper, or the bare model)
    reference: torch.nn.Module | None  # None: beta == 0, or LoRA (the base with adapters disabled)
    rollout: RolloutEngine  # hf or vllm (rollout.kind)
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


def _micro_weight(aggregation: str, mb: Rollout, seqs_per_process: float, global_tokens: float,
                  world_size: int) -> float:
    """Share of a micro-batch in this process's loss, so that the engine's average over processes of
    the summed micro-batch losses is the loss of the global batch (processes may hold unequal shares:
    `seqs_per_process` is the global number of completions / processes)."""
    if aggregation == "token_mean":
        return float(mb.completion_mask.sum()) * world_size / max(global_tokens, 1.0)
    return mb.completion_ids.shape[0] / seqs_per_process


def _padding_batch(rollout: Rollout, num_generations: int) -> Rollout:
    """A whole group of `rollout` (the one with its longest completion), for a zero-weight pass: it runs
    the model as often as a real micro-batch does (`completion_logprobs`: a shared prompt and more than
    one completion token take two forward passes, a single completion one)."""
    g = int(rollout.completion_mask.sum(1).argmax()) // num_generations
    return rollout.select(slice(g * num_generations, (g + 1) * num_generations))


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


@dataclass
class GenerationRound:
    """One round of rollouts on this process: its completions, their rewards, and all processes' rewards."""

    rollout: Rollout
    breakdown: RewardBreakdown
    global_rewards: torch.Tensor  # float64, every process's rewards in rank order (= global prompt order)
    generate_s: float
    score_s: float


def generate_and_score(m: StepModules, rows: list[GritRow], step: int, first_prompt_index: int) -> GenerationRound:
    """G seeded completions for each of `rows` (global indices from `first_prompt_index`), scored, and the
    rewards of all processes gathered."""
    cfg, G = m.cfg, m.cfg.algorithm.num_generations
    t0 = time.perf_counter()
    texts = [build_user_text(r.question, cfg.prompt, m.adapter.family) for r in rows]
    seeds = [completion_seed(cfg.seed, step, first_prompt_index + i, j) for i in range(len(rows)) for j in range(G)]
    # a network judge starts on each completion's answer as soon as it is generated (rollout/judge_overlap.py)
    ahead = (JudgeAhead(m.judge, cfg.reward, m.adapter, [r for r in rows for _ in range(G)],
                        [t for t in texts for _ in range(G)]) if overlaps_generation(m.judge, len(rows) * G) else None)
    try:
        with m.engine.generation_model(m.policy) as generator, m.engine.autocast():
            rollout = m.rollout.generate(generator, rows, texts, num_generations=G, completion_seeds=seeds,
                                         judge_ahead=ahead)
        t1 = time.perf_counter()
        breakdown = score_rollout(m, rollout, judge=ahead.answered if ahead else None)
    finally:
        if ahead is not None:
            ahead.close()
    global_rewards = m.engine.gather(torch.tensor(breakdown.total, dtype=torch.float64))
    return GenerationRound(rollout, breakdown, global_rewards, t1 - t0, time.perf_counter() - t1)


def informative_groups(m: StepModules, rounds: list[GenerationRound], step: int, first_prompt_index: int,
                       draw_round: Callable[[], list[GritRow]] | None) -> InformativeGroups:
    """Dynamic sampling: more rounds (appended to `rounds`) until the step has enough groups with reward
    spread or `algorithm.dynamic_sampling.max_rounds` rounds were generated (training/dynamic_sampling.py)."""
    G, engine = m.cfg.algorithm.num_generations, m.engine
    per_round = len(rounds[0].rollout.rows) // G * engine.world_size  # trainer.prompts_per_step
    kept = InformativeGroups(per_round, G)
    kept.add_round(rounds[0].rollout, rounds[0].global_rewards, engine.rank)
    while not kept.full and kept.rounds < m.cfg.algorithm.dynamic_sampling.max_rounds:
        if draw_round is None:
            raise ValueError("algorithm.dynamic_sampling.enabled=true: grpo_step needs draw_round to draw more prompts")
        more = generate_and_score(m, draw_round(), step, first_prompt_index + kept.rounds * per_round)
        rounds.append(more)
        kept.add_round(more.rollout, more.global_rewards, engine.rank)
    return kept


def _pooled_reward_metrics(rounds: list[GenerationRound]) -> dict[str, float]:
    """This process's reward terms over all rounds' completions: per term and per dataset."""
    parts = [r.breakdown for r in rounds]
    per_term = {term: [v for b in parts for v in b.per_term[term]] for term in parts[0].per_term}
    metrics = {f"train/reward/{term}": sum(values) / len(values) for term, values in per_term.items()}
    per_dataset = parts[0].per_dataset
    if len(parts) > 1:  # means over all rounds' completions of each dataset (rewards/total.py's formula)
        rows = [row for r in rounds for row in r.rollout.rows]
        total = [v for b in parts for v in b.total]
        per_dataset = {}
        for dataset in dict.fromkeys(row.dataset for row in rows):
            index = [i for i, row in enumerate(rows) if row.dataset == dataset]
            means = {t: sum(per_term[t][i] for i in index) / len(index) for t in per_term}
            means["total"] = sum(total[i] for i in index) / len(index)
            per_dataset[dataset] = means
    for dataset, means in per_dataset.items():
        for name, value in means.items():
            metrics[f"train/{dataset}/{name}"] = value
    return metrics


def grpo_step(m: StepModules, rows: list[GritRow], step: int, first_prompt_index: int,
              draw_round: Callable[[], list[GritRow]] | None = None) -> dict[str, float]:
    """One optimizer step on `rows` (this process's prompts, global indices from `first_prompt_index`
    within the step); return the step's metrics, already global where they say so. With
    `algorithm.dynamic_sampling` on, `draw_round()` gives this process's prompts of a further round."""
    cfg, alg, engine = m.cfg, m.cfg.algorithm, m.engine
    G = alg.num_generations
    t0 = time.perf_counter()
    rounds = [generate_and_score(m, rows, step, first_prompt_index)]
    # every group rolled out this step, before any filter: train/reward, train/frac_zero_std
    sampled = advantages_from_rewards(torch.cat([r.global_rewards for r in rounds]), G, alg.scale_rewards,
                                      alg.advantage_eps)
    local_groups = len(rows)
    n_micro = len(micro_batches(local_groups * G, cfg.trainer.micro_batch_size))  # every process runs as many
    filtered = None
    if alg.dynamic_sampling.enabled and not all(groups_with_spread(rounds[0].global_rewards, G)):
        filtered = informative_groups(m, rounds, step, first_prompt_index, draw_round)
        sampled = advantages_from_rewards(torch.cat([r.global_rewards for r in rounds]), G, alg.scale_rewards,
                                          alg.advantage_eps)
    if filtered is None:  # every group trains, on the process that generated it
        rollout, train_rewards, adv = rounds[0].rollout, rounds[0].global_rewards, sampled
        local = slice(engine.rank * local_groups * G, (engine.rank + 1) * local_groups * G)
    else:  # the groups with spread, dealt out evenly; their prompts are processed again where they train
        trained = filtered.trained()
        start, end = filtered.share(engine.rank, engine.world_size)
        rollout = training_rollout(m.adapter, trained[start:end], G, engine.device) if end > start else None
        train_rewards = torch.tensor([r for g in trained for r in g.rewards], dtype=torch.float64)
        adv = advantages_from_rewards(train_rewards, G, alg.scale_rewards, alg.advantage_eps) if trained else None
        local = slice(start * G, end * G)
    t2 = time.perf_counter()

    local_seqs = 0 if rollout is None else len(rollout.rows)
    slices = micro_batches(local_seqs, cfg.trainer.micro_batch_size)
    # built once, shared by the reference, old-policy and policy passes; each trimmed to its own longest completion
    batches = [rollout.select(sl) for sl in slices]
    advantages = [adv.values[local][sl] for sl in slices] if adv is not None else []
    # A process with fewer kept groups runs zero-weight passes up to the usual number of micro-batches:
    # the engine steps the optimizer after that many, and every process must run as many forward and
    # backward passes (DDP's buffer broadcasts and all-reduce, ZeRO-3's parameter gathers).
    padding = n_micro - len(batches) if train_rewards.numel() else 0
    batches += [_padding_batch(rounds[0].rollout, G)] * padding
    advantages += [torch.zeros(G)] * padding
    ref_logp = _reference_logprobs(m, batches) if alg.beta != 0 and batches else None
    t_ref = time.perf_counter()
    old_logp = _logprobs(m, m.policy, batches) if alg.num_iterations > 1 and batches else None
    global_tokens = engine.sum(0 if rollout is None else int(rollout.completion_mask.sum()))
    global_seqs = train_rewards.numel()
    seqs_per_process = global_seqs / engine.world_size
    m.policy.train()
    loss_value = kl_value = clip_value = grad_norm = 0.0
    for _ in range(alg.num_iterations if batches else 0):  # no group with spread at all: no update
        loss_value = kl_value = clip_value = 0.0
        for i, mb in enumerate(batches):
            with engine.accumulate(m.policy):
                with engine.autocast():
                    logp = m.adapter.completion_logprobs(m.policy, mb.prompt, mb.completion_ids, mb.completion_mask,
                                                         temperature=logprob_temperature(cfg))
                out = policy_loss(
                    logp,
                    None if old_logp is None else old_logp[i],
                    None if ref_logp is None else ref_logp[i],
                    advantages[i].to(logp.device),
                    mb.completion_mask,
                    beta=alg.beta,
                    epsilon_low=alg.epsilon_low,
                    epsilon_high=alg.epsilon_high,
                    aggregation=alg.loss_aggregation,
                    max_completion_length=cfg.rollout.max_new_tokens,
                )
                real = i < len(slices)
                w = (_micro_weight(alg.loss_aggregation, mb, seqs_per_process, global_tokens, engine.world_size)
                     if real else 0.0)
                engine.backward(out.loss * w)
                if engine.sync_gradients:
                    grad_norm = engine.clip_grad_norm(m.policy, cfg.trainer.max_grad_norm)
                m.optimizer.step()
                m.optimizer.zero_grad(set_to_none=True)
            if real:
                loss_value += float(out.loss.detach()) * w
                kl_value += float(out.kl) * mb.completion_ids.shape[0] / seqs_per_process
                clip_value += float(out.clip_fraction) * mb.completion_ids.shape[0] / seqs_per_process
    with warnings.catch_warnings():  # a step without update (no group with spread) still advances the schedule
        warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
        m.scheduler.step()
    t3 = time.perf_counter()

    metrics: dict[str, float] = {
        "train/reward": float(torch.cat([r.global_rewards for r in rounds]).mean()),
        "train/reward_std": float(sampled.group_std.mean()),
        "train/advantage_abs": float(adv.values.abs().mean()) if adv is not None else 0.0,
        "train/frac_zero_std": sampled.frac_zero_std,
        # how the loss was normalised: over the global batch (all processes)
        "train/global_completions": float(global_seqs),
        "train/global_completion_tokens": global_tokens,
        "train/loss": loss_value,
        "train/kl": kl_value,
        "train/clip_fraction": clip_value,
        "train/grad_norm": grad_norm,
        "train/completion_tokens": float(torch.cat([r.rollout.completion_mask.sum(1) for r in rounds]).float().mean()),
        "train/lr": m.scheduler.get_last_lr()[0],
        "train/judge_failures": float(sum(r.breakdown.judge_failures for r in rounds)),
        "time/rollout_s": sum(r.generate_s for r in rounds),
        "time/reward_s": t2 - t0 - sum(r.generate_s for r in rounds),
        "time/update_s": t3 - t2,
        "time/reference_s": t_ref - t2,  # part of update_s
        "time/step_s": t3 - t0,
    }
    if alg.scale_rewards == "batch" and global_seqs:
        metrics["train/reward_batch_std_global"] = float(train_rewards.std(unbiased=True))
    metrics.update(_pooled_reward_metrics(rounds))
    if alg.dynamic_sampling.enabled:
        metrics["train/dynamic_sampling_rounds"] = float(len(rounds))
        metrics["train/groups_dropped"] = float(filtered.dropped if filtered else 0)  # zero spread, all rounds
        metrics["train/groups_kept"] = float(global_seqs // G)  # trained on: trainer.prompts_per_step, or fewer
    return metrics
