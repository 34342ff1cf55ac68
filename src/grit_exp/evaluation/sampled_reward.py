"""The objective GRPO optimises, measured on held-out rows: the mean reward of sampled completions.

`sampled_reward(...)` draws K completions per unique eval row at the rollout's temperature / top-k /
top-p (the training sampler), scores them with the training reward (`cfg.reward`, the same call as a
GRPO step) and returns, per dataset, the mean total reward over all K x n completions
(`eval/<dataset>/reward_sampled`) and the per-row spread. Greedy evaluation (`runner.py`) measures
the single most likely answer; this measures the policy that GRPO trains, which greedy decoding
can hide (a policy that sharpens moves the sampled reward before the greedy one).

Every completion has its own seed, derived from (run seed, a fixed evaluation tag, the row's global
index, the sample index), so the numbers do not depend on batch size or on the number of processes,
and two evaluations of different checkpoints in one run draw the same noise (their difference is
not blurred by fresh sampling noise). Batches are dealt round-robin to processes like the greedy
evaluation; per-row rewards are gathered and averaged in global row order.

Left out: files (the runner writes the means into metrics.json), pictures, judge caching.
"""

from __future__ import annotations

from typing import Any

from grit_exp.cluster import collectives
from grit_exp.data.prompts import build_user_text
from grit_exp.evaluation.items import EvalItem
from grit_exp.rollout.seeded_sampling import completion_seed

EVAL_SAMPLING_STEP = -1  # the `step` of completion_seed for evaluation samples: never a training step


def _shard(n: int, batch_size: int, rank: int, world_size: int) -> list[range]:
    count = -(-n // batch_size)
    return [range(b * batch_size, min(n, (b + 1) * batch_size)) for b in range(count) if b % world_size == rank]


def sampled_reward(
    cfg: Any, adapter: Any, model: Any, judge: Any, unique: list[EvalItem], *, k: int, batch_size: int,
) -> dict[str, dict[str, float]]:
    """{dataset: {"reward_sampled": mean over K samples x rows, "reward_sampled_k": K, "n_sampled": rows}}
    over `unique` (deduplicated, in global order); rows whose image is missing are left out. Every
    process must call it with the same items; all get the result."""
    from grit_exp.evaluation.zoom_metrics import zoom_max_turns
    from grit_exp.rewards import RewardContext, compute_rewards
    from grit_exp.rollout.hf import HFRollout

    if k < 1:
        raise ValueError(f"sampled evaluation needs k >= 1 samples per row, got {k}")
    rollout = HFRollout(adapter, cfg.rollout)
    present = [i for i, item in enumerate(unique) if not item.image_missing]
    rows_per_call = max(1, batch_size // k)  # batch_size completions per generate call
    local: list[tuple[int, str, list[float]]] = []
    for part in _shard(len(present), rows_per_call, collectives.rank(), collectives.world_size()):
        indices = [present[p] for p in part]
        rows = [unique[i].row for i in indices]
        texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows]
        seeds = [completion_seed(int(cfg.seed), EVAL_SAMPLING_STEP, i, j) for i in indices for j in range(k)]
        result = rollout.generate(model, rows, texts, num_generations=k, completion_seeds=seeds)
        token_ids = [ids[mask.bool()].tolist() for ids, mask in zip(result.completion_ids, result.completion_mask, strict=True)]
        ctx = RewardContext(prompts=result.prompt.user_texts, token_ids=token_ids, judge=judge,
                            counting_datasets=list(cfg.reward.counting_datasets),
                            zoom_calls=result.zoom_calls, zoom_max_turns=zoom_max_turns(cfg.rollout))
        totals = compute_rewards(cfg.reward, result.texts, result.rows, ctx).total
        for n, i in enumerate(indices):
            local.append((i, unique[i].row.dataset, totals[n * k : (n + 1) * k]))
    gathered = sorted((r for part in collectives.all_gather_object(local) for r in part), key=lambda r: r[0])
    by_dataset: dict[str, list[float]] = {}
    for _, dataset, rewards in gathered:
        by_dataset.setdefault(dataset, []).append(sum(rewards) / len(rewards))
    return {
        name: {"reward_sampled": sum(means) / len(means), "reward_sampled_k": float(k), "n_sampled": float(len(means))}
        for name, means in by_dataset.items()
    }
