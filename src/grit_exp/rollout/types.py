"""What a rollout gives the rest of the toolkit: the `Rollout` batch of completions, the mask of their real
tokens, and `RolloutEngine`, the protocol that every rollout (`hf`, `vllm`) implements.

Kept apart from the rollouts themselves so that the GRPO step, dynamic sampling and the judge overlap
import the types without importing a rollout (and without import cycles).
Left out: generating anything (`hf.py`, `vllm.py`), replaying recorded completions (`replay.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from grit_exp.data.schema import GritRow
from grit_exp.models.base import PromptBatch
from grit_exp.models.zoom_logprobs import ToolTurnInputs
from grit_exp.rollout.zoom.calls import ZoomCall

if TYPE_CHECKING:
    from grit_exp.rollout.judge_overlap import JudgeAhead


@dataclass
class Rollout:
    prompt: PromptBatch  # one entry per completion (prompts repeated G times)
    rows: list[GritRow]  # one per completion
    completion_ids: torch.Tensor  # [N, T]
    completion_mask: torch.Tensor  # [N, T], 1 for real tokens (EOS included)
    texts: list[str]
    # [N, T] the sampler's log-prob of each completion token (rollout=vllm; 0 past the end); None: not
    # recorded (rollout=hf). Read by algorithm.tis only.
    sampler_logprobs: torch.Tensor | None = None
    # zoom turns (rollout.zoom.enabled): each completion's calls in turn order (None: zoom off; `texts` then hold
    # the model-written turns only), and the tool turns' tokens inside completion_ids (completion_mask is 0
    # there: only model-written tokens are trained, counted and scored; the tool tokens are attended to)
    zoom_calls: list[list[ZoomCall]] | None = None
    tool_turns: ToolTurnInputs | None = None

    @property
    def num_completion_tokens(self) -> list[int]:
        return self.completion_mask.sum(1).tolist()

    def select(self, index: slice) -> Rollout:
        """A contiguous slice of completions (for micro-batches), with only their image rows, trimmed to
        its own longest completion (not the batch's)."""
        rows = list(range(len(self.rows))[index])
        mask = self.completion_mask[index]
        if self.tool_turns is None:
            longest = int(mask.sum(1).max()) if mask.numel() else 0
        else:  # tool turns leave holes in completion_mask
            longest = sequence_length(mask + self.tool_turns.tool_mask[index])
        sampler = None if self.sampler_logprobs is None else self.sampler_logprobs[index][:, :longest]
        return Rollout(self.prompt.take(rows), [self.rows[i] for i in rows], self.completion_ids[index][:, :longest],
                       mask[:, :longest], self.texts[index], sampler_logprobs=sampler,
                       zoom_calls=None if self.zoom_calls is None else self.zoom_calls[index],
                       tool_turns=None if self.tool_turns is None else self.tool_turns.take(rows, longest))


class RolloutEngine(Protocol):
    """G completions per prompt from the policy being trained (`rollout.kind`: hf or vllm)."""

    def generate(self, model: torch.nn.Module, rows: list[GritRow], user_texts: list[str],
                 num_generations: int = 1, greedy: bool = False, completion_seeds: list[int] | None = None,
                 judge_ahead: JudgeAhead | None = None) -> Rollout: ...

    def close(self) -> None: ...


def completion_mask(ids: torch.Tensor, eos_token_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first EOS of each row, 0 after it."""
    is_eos = torch.isin(ids, torch.tensor(eos_token_ids, device=ids.device))
    seen_before = (is_eos.long().cumsum(1) - is_eos.long()) > 0
    return (~seen_before).long()


def sequence_length(span: torch.Tensor) -> int:
    """The longest row of a [N, T] mask whose ones may have holes: 1 + the last column holding a one."""
    if not span.numel() or not span.any():
        return 0
    columns = torch.arange(1, span.shape[1] + 1, device=span.device)
    return int((span.ne(0) * columns).max())
