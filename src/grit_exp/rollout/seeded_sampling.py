"""Sampling whose randomness belongs to each completion, not to the batch or the process.

HF `generate` draws every row's next token from one global RNG stream, so what a prompt's G
completions look like depends on which other prompts share its batch and on how many processes
split the step. Then a 1-process and an 8-process run of the same config diverge at the first
token. Here each completion gets its own seed, derived from (run seed, step, global prompt index,
completion index), and samples with the Gumbel-max trick from its own `torch.Generator`:
argmax(logits / T + Gumbel noise) is an exact draw from softmax(logits / T). No library offers
per-row generators inside `generate`, hence this module.

It applies temperature, top-k and top-p itself, adds the row's noise and takes the argmax
(`draw`, used by grit-exp's decode loop, `rollout/decode.py`). As a logits processor it runs last in
a *greedy* HF `generate` (HF's own warpers would come after any custom processor) and leaves only the
drawn token finite, so greedy decoding picks it (the TRL benchmark hands it to TRL that way).
Suppressed tokens are already -inf when it runs.
"""

from __future__ import annotations

import hashlib

import torch
from transformers import LogitsProcessor


def completion_seed(seed: int, step: int, prompt_index: int, completion_index: int) -> int:
    """A 63-bit seed for one completion, stable across processes, batch layouts and Python runs."""
    digest = hashlib.sha256(f"{seed}/{step}/{prompt_index}/{completion_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def filter_top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """HF's top-k then top-p (nucleus) filtering: removed entries become -inf (keeps >= 1 token)."""
    if top_k and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop_sorted = cumulative - sorted_logits.softmax(-1) >= top_p  # mass before this token already >= top_p
        drop_sorted[..., 0] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


class PerRowSeededSampler(LogitsProcessor):
    """Draw each row's next token from its own generator (see the module docstring)."""

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float, device: torch.device):
        if temperature <= 0:
            raise ValueError(f"rollout.temperature={temperature} must be > 0 for sampling")
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        self.generators = []
        for seed in seeds:
            generator = torch.Generator(device=device)
            generator.manual_seed(seed)
            self.generators.append(generator)

    def draw(self, scores: torch.Tensor, rows: list[int]) -> torch.Tensor:
        """The next token of each row of `scores` ([len(rows), vocab]); row i is completion `rows[i]`,
        drawn from that completion's generator (so a decode batch may hold any subset of completions)."""
        logits = filter_top_k_top_p(scores.float() / self.temperature, self.top_k, self.top_p)
        uniform = torch.stack([
            torch.rand(logits.shape[-1], generator=self.generators[row], device=logits.device) for row in rows
        ])
        gumbel = -torch.log(-torch.log(uniform.clamp(min=1e-20, max=1.0 - 1e-7)))
        return (logits + gumbel).argmax(-1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """As the last logits processor of a greedy HF `generate`: only the drawn token stays finite."""
        if scores.shape[0] != len(self.generators):
            raise ValueError(f"{scores.shape[0]} rows in the batch but {len(self.generators)} seeds")
        drawn = self.draw(scores, list(range(scores.shape[0]))).unsqueeze(-1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter(-1, drawn, 0.0)
