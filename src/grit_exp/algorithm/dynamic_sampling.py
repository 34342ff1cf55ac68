"""DAPO's dynamic sampling (`algorithm.dynamic_sampling`): keep only the groups with reward spread.

A group whose G rewards are all equal has zero advantage: it adds nothing to the policy gradient but
still counts in the loss's normaliser (and the KL). With dynamic sampling such groups are dropped and
the step rolls out further rounds of `trainer.prompts_per_step` prompts, drawn from the run's
`PromptSampler` (so a resumed run draws the same ones), until it holds `prompts_per_step` groups with
spread or `max_rounds` rounds were generated. The first `prompts_per_step` kept groups in global
order (round, then prompt) are trained on; a shortfall trains on fewer, and logs it.

Every process generates every round (the decision to continue is taken on the gathered rewards, so
all agree), and round k's prompts take the global indices k x prompts_per_step + i, which give their
completions distinct seeds. The kept groups are then dealt out evenly to the processes: a group may
be trained on by another process than the one that generated it, so each kept group travels as its
row, prompt text and completion token ids (`KeptGroup`, small), and its prompt is processed again by
the process that trains on it (`training_rollout`). Which groups are kept, and so the update, does
not depend on the number of processes.

verl's DAPO recipe (`algorithm.filter_groups`) does the same on a single controller, which hands the
filtered batch to its workers; here the processes are peers, hence this module. What it leaves out:
DAPO's overlong reward shaping, and carrying surplus informative groups over to the next step (they
are discarded, as verl does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from grit_exp.cluster import collectives as distributed
from grit_exp.data.schema import GritRow
from grit_exp.models.base import ModelAdapter
from grit_exp.rollout.types import Rollout


def groups_with_spread(rewards: torch.Tensor, num_generations: int) -> list[bool]:
    """For each group of `num_generations` consecutive rewards: are they not all equal?"""
    grouped = rewards.view(-1, num_generations)
    return (grouped != grouped[:, :1]).any(dim=1).tolist()


@dataclass
class KeptGroup:
    """One prompt's G completions, as much as another process needs to train on them."""

    row: GritRow
    user_text: str
    completion_ids: list[list[int]]  # each completion's ids up to its last real token
    completion_mask: list[list[int]]
    texts: list[str]
    rewards: list[float]


def kept_groups(rollout: Rollout, rewards: list[float], keep: list[bool], num_generations: int) -> list[KeptGroup]:
    """The groups of this process's `rollout` that `keep` marks (one flag per local group)."""
    out = []
    G = num_generations
    for g, flag in enumerate(keep):
        if not flag:
            continue
        ids, mask = rollout.completion_ids[g * G : (g + 1) * G].cpu(), rollout.completion_mask[g * G : (g + 1) * G].cpu()
        ends = [int(m.nonzero().max()) + 1 if m.any() else 0 for m in mask]
        out.append(KeptGroup(rollout.rows[g * G], rollout.prompt.user_texts[g * G],
                             [ids[i, :end].tolist() for i, end in enumerate(ends)],
                             [mask[i, :end].tolist() for i, end in enumerate(ends)],
                             rollout.texts[g * G : (g + 1) * G], rewards[g * G : (g + 1) * G]))
    return out


@dataclass
class InformativeGroups:
    """The groups with reward spread gathered over a step's rounds, in global order, on every process."""

    target: int  # trainer.prompts_per_step
    num_generations: int
    groups: list[KeptGroup] = field(default_factory=list)
    rounds: int = 0
    dropped: int = 0

    @property
    def full(self) -> bool:
        return len(self.groups) >= self.target

    def add_round(self, rollout: Rollout, global_rewards: torch.Tensor, rank: int) -> None:
        """Record one round: `global_rewards` of all processes (rank order); `rollout` is this process's."""
        G = self.num_generations
        spread = groups_with_spread(global_rewards, G)
        local = len(rollout.rows) // G
        mine = kept_groups(rollout, global_rewards[rank * local * G : (rank + 1) * local * G].tolist(),
                           spread[rank * local : (rank + 1) * local], G)
        self.groups += [g for part in distributed.all_gather_object(mine) for g in part]
        self.rounds += 1
        self.dropped += spread.count(False)

    def trained(self) -> list[KeptGroup]:
        """The groups the step trains on: the first `target` of them."""
        return self.groups[: self.target]

    def share(self, rank: int, world_size: int) -> tuple[int, int]:
        """[start, end) of the trained groups that process `rank` trains on (an even split)."""
        n = len(self.trained())
        return rank * n // world_size, (rank + 1) * n // world_size


def training_rollout(adapter: ModelAdapter, groups: list[KeptGroup], num_generations: int,
                     device: torch.device) -> Rollout:
    """A Rollout of `groups` to train on, prompts processed here (as the rollouts process them)."""
    rows = [g.row for g in groups]
    prompt = adapter.build_prompt_batch(rows, [g.user_text for g in groups]).to(device)
    completions = [(ids, mask) for g in groups for ids, mask in zip(g.completion_ids, g.completion_mask, strict=True)]
    longest = max((len(ids) for ids, _ in completions), default=0)
    pad = adapter.pad_token_id if adapter.pad_token_id is not None else adapter.eos_token_ids[0]
    ids = torch.full((len(completions), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(completions), longest), dtype=torch.long)
    for i, (tokens, real) in enumerate(completions):
        ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        mask[i, : len(real)] = torch.tensor(real, dtype=torch.long)
    return Rollout(prompt.repeat_interleave(num_generations), [r for r in rows for _ in range(num_generations)],
                   ids.to(device), mask.to(device), [t for g in groups for t in g.texts])
