"""One GRPO-GR step, in three phases read top to bottom: collect -> update -> metrics.

- `collect` rolls out G completions per prompt, scores them, selects the groups to train on (all of
  them, or with `algorithm.dynamic_sampling` those with reward spread, over further rounds of prompts:
  `algorithm/dynamic_sampling.py`), computes their group advantages, cuts them into micro-batches and
  records the reference (and, with num_iterations > 1, the old policy's) log-probs: a `Trajectory`.
- `update` runs the micro-batches through the policy loss, backward and the optimizer step
  (num_iterations times over the same trajectory, the clipped ratio against the old log-probs).
- `step_metrics` turns the trajectory and the update's statistics into the step's metrics.

Each process generates and scores whole prompt groups; the rewards of all processes are gathered
so that advantages (and `scale_rewards=batch`'s std) are those of the global batch, and
`token_mean` divides by the global number of completion tokens: a step's result does not depend on
how many processes share it. Completions are sampled from per-completion seeds
(`rollout/seeded_sampling.py`) for the same reason. With dynamic sampling the advantages and the
loss's normalisation count only the groups trained on, and a process with fewer of them runs
zero-weight passes (one micro-batch each) so that all run the same number. Left out: gradients, precision, accumulation
and clipping (the engine's, `cluster/engine.py`), the loss maths (`algorithm/losses.py`,
`algorithm/advantages.py`), and drawing the prompts (`training/run.py`).
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from grit_exp.algorithm.advantages import Advantages, advantages_from_rewards
from grit_exp.algorithm.dynamic_sampling import InformativeGroups, groups_with_spread, training_rollout
from grit_exp.algorithm.losses import policy_loss, truncated_is_weights
from grit_exp.algorithm.step_modules import StepModules, micro_batches
from grit_exp.data.prompts import build_user_text
from grit_exp.data.schema import GritRow
from grit_exp.rewards import RewardBreakdown, RewardContext, compute_rewards
from grit_exp.rollout.judge_overlap import JudgeAhead, overlaps_generation
from grit_exp.rollout.seeded_sampling import completion_seed
from grit_exp.rollout.types import Rollout


def grpo_step(m: StepModules, rows: list[GritRow], step: int, first_prompt_index: int,
              draw_round: Callable[[], list[GritRow]] | None = None) -> dict[str, float]:
    """One optimizer step on `rows` (this process's prompts, global indices from `first_prompt_index`
    within the step); return the step's metrics, already global where they say so. With
    `algorithm.dynamic_sampling` on, `draw_round()` gives this process's prompts of a further round."""
    trajectory = collect(m, rows, step, first_prompt_index, draw_round)
    stats = update(m, trajectory)
    return step_metrics(m, trajectory, stats, finished=time.perf_counter())


# ---------------------------------------------------------------------------------------------------
# collect: rollout -> rewards -> selection -> advantages -> micro-batches -> reference log-probs


@dataclass
class GenerationRound:
    """One round of rollouts on this process: its completions, their rewards, and all processes' rewards."""

    rollout: Rollout
    breakdown: RewardBreakdown
    global_rewards: torch.Tensor  # float64, every process's rewards in rank order (= global prompt order)
    generate_s: float
    score_s: float


@dataclass
class Selection:
    """The groups the step trains on: this process's completions of them and the global advantages."""

    rollout: Rollout | None  # this process's share; None: it trains on no group (dynamic sampling)
    rewards: torch.Tensor  # float64, the rewards of every trained group (all processes), in global order
    advantages: Advantages | None  # of every trained group; None: no group with spread at all
    local: slice  # this process's completions within `advantages.values`
    sampled: Advantages  # of every group rolled out this step, before any filter
    kept: InformativeGroups | None  # dynamic sampling's selection, when it ran


@dataclass
class Trajectory:
    """What the update needs from the collect phase, and what the metrics report of it."""

    rounds: list[GenerationRound]  # every round generated this step (more than one: dynamic sampling)
    selection: Selection
    batches: list[Rollout]  # micro-batches: the real ones, then zero-weight padding passes
    advantages: list[torch.Tensor]  # one per micro-batch
    real_batches: int  # batches[:real_batches] carry weight, the rest are padding
    reference_logprobs: list[torch.Tensor] | None  # None: beta == 0
    old_logprobs: list[torch.Tensor] | None  # None: num_iterations == 1 (the ratio is against the policy itself)
    global_tokens: float  # completion tokens trained on, all processes (token_mean's normaliser)
    global_seqs: int  # completions trained on, all processes
    started: float  # time.perf_counter() at the start of the step
    selected: float  # ... once the groups were selected (the update's time starts here)
    reference_s: float


def collect(m: StepModules, rows: list[GritRow], step: int, first_prompt_index: int,
            draw_round: Callable[[], list[GritRow]] | None) -> Trajectory:
    """Everything the update needs, from this process's prompts `rows` (no gradient taken here)."""
    alg, engine = m.cfg.algorithm, m.engine
    started = time.perf_counter()
    rounds = [generate_and_score(m, rows, step, first_prompt_index)]
    selection = select_groups(m, rounds, step, first_prompt_index, draw_round)
    selected = time.perf_counter()
    batches, advantages, real_batches = training_micro_batches(m, selection, rounds[0].rollout)
    reference_logprobs = _reference_logprobs(m, batches) if alg.beta != 0 and batches else None
    reference_s = time.perf_counter() - selected
    old_logprobs = _logprobs(m, m.policy, batches) if alg.num_iterations > 1 and batches else None
    rollout = selection.rollout
    global_tokens = engine.sum(0 if rollout is None else int(rollout.completion_mask.sum()))
    return Trajectory(rounds, selection, batches, advantages, real_batches, reference_logprobs, old_logprobs,
                      global_tokens, selection.rewards.numel(), started, selected, reference_s)


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
        # a rollout that pushes the weights into its own engine (vLLM) gathers a ZeRO-3 model per module itself
        gather = not getattr(m.rollout, "pushes_weights", False)
        with m.engine.generation_model(m.policy, gather=gather) as generator, m.engine.autocast():
            rollout = m.rollout.generate(generator, rows, texts, num_generations=G, completion_seeds=seeds,
                                         judge_ahead=ahead)
        t1 = time.perf_counter()
        breakdown = score_rollout(m, rollout, judge=ahead.answered if ahead else None)
    finally:
        if ahead is not None:
            ahead.close()
    global_rewards = m.engine.gather(torch.tensor(breakdown.total, dtype=torch.float64))
    return GenerationRound(rollout, breakdown, global_rewards, t1 - t0, time.perf_counter() - t1)


def score_rollout(m: StepModules, rollout: Rollout, judge: Any = None):
    """Rewards of the rollout; `judge` (default `m.judge`) may hold answers judged during generation."""
    token_ids = [ids[mask.bool()].tolist() for ids, mask in zip(rollout.completion_ids, rollout.completion_mask, strict=True)]
    ctx = RewardContext(
        prompts=rollout.prompt.user_texts, token_ids=token_ids, judge=judge or m.judge,
        counting_datasets=list(m.cfg.reward.counting_datasets), zoom_calls=rollout.zoom_calls,
        zoom_max_turns=int(m.cfg.rollout.zoom.max_turns) if rollout.zoom_calls is not None else None,
    )
    return compute_rewards(m.cfg.reward, rollout.texts, rollout.rows, ctx)


def select_groups(m: StepModules, rounds: list[GenerationRound], step: int, first_prompt_index: int,
                  draw_round: Callable[[], list[GritRow]] | None) -> Selection:
    """Every group of the first round, each trained on by the process that generated it; or (dynamic
    sampling, when a group lacks spread) the groups with spread over more rounds (appended to `rounds`),
    dealt out evenly: their prompts are processed again where they train."""
    alg, engine = m.cfg.algorithm, m.engine
    G = alg.num_generations
    kept = None
    if alg.dynamic_sampling.enabled and not all(groups_with_spread(rounds[0].global_rewards, G)):
        kept = informative_groups(m, rounds, step, first_prompt_index, draw_round)
    # every group rolled out this step, before any filter: train/reward, train/frac_zero_std
    sampled = advantages_from_rewards(torch.cat([r.global_rewards for r in rounds]), G, alg.scale_rewards,
                                      alg.advantage_eps)
    if kept is None:
        local_seqs = len(rounds[0].rollout.rows)
        return Selection(rounds[0].rollout, rounds[0].global_rewards, sampled,
                         slice(engine.rank * local_seqs, (engine.rank + 1) * local_seqs), sampled, None)
    trained = kept.trained()
    start, end = kept.share(engine.rank, engine.world_size)
    rollout = training_rollout(m.adapter, trained[start:end], G, engine.device) if end > start else None
    rewards = torch.tensor([r for g in trained for r in g.rewards], dtype=torch.float64)
    advantages = advantages_from_rewards(rewards, G, alg.scale_rewards, alg.advantage_eps) if trained else None
    return Selection(rollout, rewards, advantages, slice(start * G, end * G), sampled, kept)


def informative_groups(m: StepModules, rounds: list[GenerationRound], step: int, first_prompt_index: int,
                       draw_round: Callable[[], list[GritRow]] | None) -> InformativeGroups:
    """Dynamic sampling: more rounds (appended to `rounds`) until the step has enough groups with reward
    spread or `algorithm.dynamic_sampling.max_rounds` rounds were generated (algorithm/dynamic_sampling.py)."""
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


def training_micro_batches(m: StepModules, selection: Selection,
                           first_round: Rollout) -> tuple[list[Rollout], list[torch.Tensor], int]:
    """(micro-batches, their advantages, how many of them are real): this process's selected completions
    in micro-batches, then zero-weight passes up to as many micro-batches as the first round makes.

    The engine steps the optimizer after that many, and every process must run as many forward and
    backward passes (DDP's buffer broadcasts and all-reduce, ZeRO-3's parameter gathers)."""
    size = m.cfg.trainer.micro_batch_size
    usual = len(micro_batches(len(first_round.rows), size))  # every process runs as many
    rollout, advantages = selection.rollout, selection.advantages
    slices = micro_batches(0 if rollout is None else len(rollout.rows), size)
    # built once, shared by the reference, old-policy and policy passes; each trimmed to its own longest completion
    batches = [rollout.select(sl) for sl in slices]
    batch_advantages = [advantages.values[selection.local][sl] for sl in slices] if advantages is not None else []
    padding = usual - len(batches) if selection.rewards.numel() else 0  # no group with spread at all: no update
    if padding:
        pad = _padding_batch(first_round, size)
        batches += [pad] * padding
        batch_advantages += [torch.zeros(len(pad.rows))] * padding
    return batches, batch_advantages, len(slices)


def _padding_batch(rollout: Rollout, micro_batch_size: int) -> Rollout:
    """A zero-weight micro-batch: one of `rollout`'s own micro-batches of `trainer.micro_batch_size` rows (the
    one whose longest completion is shortest, the cheapest), so it needs no more memory than the micro-batches
    the user sized for. It runs the model as a real micro-batch does (`completion_logprobs`: the same
    forward passes for every batch)."""
    slices = micro_batches(len(rollout.rows), micro_batch_size)
    lengths = [int(rollout.completion_mask[sl].sum(1).max()) for sl in slices]
    return rollout.select(slices[lengths.index(min(lengths))])


def logprob_temperature(cfg: Any) -> float:
    """`algorithm.logprob_temperature`: "sampling" scores the policy that sampled (logits / T, as TRL);
    "one" uses raw logits (the released GRIT code)."""
    return float(cfg.rollout.temperature) if cfg.algorithm.logprob_temperature == "sampling" else 1.0


@torch.no_grad()
def _logprobs(m: StepModules, model: torch.nn.Module, batches: list[Rollout]) -> list[torch.Tensor]:
    """Per-token log-probs of each micro-batch's completions under `model`, without gradients."""
    parts = []
    for mb in batches:
        with m.engine.autocast():
            parts.append(m.adapter.completion_logprobs(model, mb.prompt, mb.completion_ids, mb.completion_mask,
                                                       temperature=logprob_temperature(m.cfg),
                                                       tool_turns=mb.tool_turns))
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


# ---------------------------------------------------------------------------------------------------
# update: micro-batches -> loss -> backward -> optimizer step (num_iterations times) -> scheduler step


@dataclass
class UpdateStats:
    """The last pass's loss, KL and clip fraction (summed over its micro-batches with their weights), and the
    last gradient norm; all 0 without an update."""

    loss: float = 0.0
    kl: float = 0.0
    clip_fraction: float = 0.0
    grad_norm: float = 0.0
    is_weight: float = 0.0  # algorithm.tis: mean importance weight per token, and the fraction truncated / masked
    is_clipped: float = 0.0


def update(m: StepModules, trajectory: Trajectory) -> UpdateStats:
    """`algorithm.num_iterations` passes over the trajectory, each one optimizer step; then the scheduler's step."""
    stats = UpdateStats()
    m.policy.train()
    for _ in range(m.cfg.algorithm.num_iterations if trajectory.batches else 0):  # no group with spread: no update
        stats = _update_pass(m, trajectory, grad_norm=stats.grad_norm)
    with warnings.catch_warnings():  # a step without update (no group with spread) still advances the schedule
        warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
        m.scheduler.step()
    return stats


def _update_pass(m: StepModules, t: Trajectory, grad_norm: float) -> UpdateStats:
    """One pass over the trajectory's micro-batches; the engine steps the optimizer after the last one."""
    cfg, alg, engine = m.cfg, m.cfg.algorithm, m.engine
    seqs_per_process = t.global_seqs / engine.world_size
    loss_value = kl_value = clip_value = is_value = is_clipped = 0.0
    for i, mb in enumerate(t.batches):
        with engine.accumulate(m.policy):
            with engine.autocast():
                logp = m.adapter.completion_logprobs(m.policy, mb.prompt, mb.completion_ids, mb.completion_mask,
                                                     temperature=logprob_temperature(cfg), tool_turns=mb.tool_turns)
            old = None if t.old_logprobs is None else t.old_logprobs[i]
            out = policy_loss(
                logp,
                old,
                None if t.reference_logprobs is None else t.reference_logprobs[i],
                t.advantages[i].to(logp.device),
                mb.completion_mask,
                beta=alg.beta,
                epsilon_low=alg.epsilon_low,
                epsilon_high=alg.epsilon_high,
                aggregation=alg.loss_aggregation,
                max_completion_length=cfg.rollout.max_new_tokens,
                is_weights=truncated_is_weights(alg.tis, logp if old is None else old, mb.sampler_logprobs,
                                                mb.completion_mask),
            )
            real = i < t.real_batches
            w = (_micro_weight(alg.loss_aggregation, mb, seqs_per_process, t.global_tokens, engine.world_size)
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
            if out.is_weight_mean is not None:
                is_value += float(out.is_weight_mean) * mb.completion_ids.shape[0] / seqs_per_process
                is_clipped += float(out.is_clipped_fraction) * mb.completion_ids.shape[0] / seqs_per_process
    return UpdateStats(loss_value, kl_value, clip_value, grad_norm, is_value, is_clipped)


def _micro_weight(aggregation: str, mb: Rollout, seqs_per_process: float, global_tokens: float,
                  world_size: int) -> float:
    """Share of a micro-batch in this process's loss, so that the engine's average over processes of
    the summed micro-batch losses is the loss of the global batch (processes may hold unequal shares:
    `seqs_per_process` is the global number of completions / processes)."""
    if aggregation == "token_mean":
        return float(mb.completion_mask.sum()) * world_size / max(global_tokens, 1.0)
    return mb.completion_ids.shape[0] / seqs_per_process


# ---------------------------------------------------------------------------------------------------
# metrics: this process's view of the step (run.py averages them over processes)


def step_metrics(m: StepModules, t: Trajectory, stats: UpdateStats, finished: float) -> dict[str, float]:
    """The step's metrics (`finished`: time.perf_counter() at the end of the update)."""
    alg, selection, rounds = m.cfg.algorithm, t.selection, t.rounds
    trained = selection.advantages
    generate_s = sum(r.generate_s for r in rounds)
    metrics: dict[str, float] = {
        "train/reward": float(torch.cat([r.global_rewards for r in rounds]).mean()),
        "train/reward_std": float(selection.sampled.group_std.mean()),
        "train/advantage_abs": float(trained.values.abs().mean()) if trained is not None else 0.0,
        "train/frac_zero_std": selection.sampled.frac_zero_std,
        # how the loss was normalised: over the global batch (all processes)
        "train/global_completions": float(t.global_seqs),
        "train/global_completion_tokens": t.global_tokens,
        "train/loss": stats.loss,
        "train/kl": stats.kl,
        "train/clip_fraction": stats.clip_fraction,
        "train/grad_norm": stats.grad_norm,
        "train/completion_tokens": float(torch.cat([r.rollout.completion_mask.sum(1) for r in rounds]).float().mean()),
        "train/lr": m.scheduler.get_last_lr()[0],
        "train/judge_failures": float(sum(r.breakdown.judge_failures for r in rounds)),
        "time/rollout_s": generate_s,
        "time/reward_s": t.selected - t.started - generate_s,
        "time/update_s": finished - t.selected,
        "time/reference_s": t.reference_s,  # part of update_s
        "time/step_s": finished - t.started,
    }
    if alg.scale_rewards == "batch" and t.global_seqs:
        metrics["train/reward_batch_std_global"] = float(selection.rewards.std(unbiased=True))
    metrics.update(_pooled_reward_metrics(rounds))
    if alg.tis.mode != "off":  # truncated importance sampling against the vLLM sampler
        metrics["train/tis_weight_mean"] = stats.is_weight
        metrics["train/tis_clipped_fraction"] = stats.is_clipped
    if alg.dynamic_sampling.enabled:
        metrics["train/dynamic_sampling_rounds"] = float(len(rounds))
        metrics["train/groups_dropped"] = float(selection.kept.dropped if selection.kept else 0)  # zero spread, all rounds
        metrics["train/groups_kept"] = float(t.global_seqs // alg.num_generations)  # trainer.prompts_per_step, or fewer
    return metrics


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
