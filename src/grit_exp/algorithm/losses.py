"""Policy-gradient losses of the GRPO family, and the supervised loss.

Per token: ratio r = exp(logp - logp_old) clipped to [1 - eps_low, 1 + eps_high]; loss
-min(r A, clip(r) A) + beta * KL, with the k3 estimator KL = exp(ref - logp) - (ref - logp) - 1.
With one update per generation (num_iterations = 1) logp_old is logp detached, so r == 1; with
`algorithm.logprob_temperature=one` (raw logits) the gradient is then that of the released GRIT code,
with the default "sampling" the log-probs are those of the policy that sampled (logits / T). The variants differ in how token losses are reduced:

- `seq_mean_token_mean` (GRPO, the released code): mean over each sequence's tokens, then over sequences;
- `token_mean` (DAPO): mean over all tokens of the batch;
- `seq_mean_token_sum_norm` (Dr. GRPO): token sum divided by (sequences x max completion length).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossOutput:
    loss: torch.Tensor
    kl: torch.Tensor  # mean k3 KL per token (0 when no reference)
    clip_fraction: torch.Tensor  # fraction of tokens whose ratio was clipped


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: str, max_completion_length: int | None = None) -> torch.Tensor:
    mask = mask.to(per_token.dtype)
    if mode == "seq_mean_token_mean":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    if mode == "token_mean":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if mode == "seq_mean_token_sum_norm":
        if not max_completion_length:
            raise ValueError("loss aggregation 'seq_mean_token_sum_norm' needs max_completion_length")
        return (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)
    raise ValueError(
        f"algorithm.loss_aggregation={mode!r} is not valid; choose 'seq_mean_token_mean', 'token_mean' "
        "or 'seq_mean_token_sum_norm'"
    )


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor | None,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    beta: float,
    epsilon_low: float,
    epsilon_high: float,
    aggregation: str,
    max_completion_length: int | None = None,
) -> LossOutput:
    """GRPO-family loss for per-token log-probs [B, T], advantages [B] and a completion mask [B, T]."""
    if old_logp is None:
        old_logp = logp.detach()
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    adv = advantages[:, None].to(logp.dtype)
    per_token = -torch.min(ratio * adv, clipped * adv)
    maskf = mask.to(logp.dtype)
    if beta != 0.0:
        if ref_logp is None:
            raise ValueError("algorithm.beta != 0 needs reference log-probs")
        kl = k3_kl(logp, ref_logp)
        per_token = per_token + beta * kl
        mean_kl = (kl * maskf).sum() / maskf.sum().clamp(min=1.0)
    else:
        mean_kl = torch.zeros((), dtype=logp.dtype)
    was_clipped = ((ratio < 1 - epsilon_low) & (adv < 0)) | ((ratio > 1 + epsilon_high) & (adv > 0))
    clip_fraction = (was_clipped.to(logp.dtype) * maskf).sum() / maskf.sum().clamp(min=1.0)
    loss = aggregate(per_token, mask, aggregation, max_completion_length)
    return LossOutput(loss, mean_kl.detach(), clip_fraction.detach())


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the target tokens, averaged over all target tokens."""
    return aggregate(-logp, mask, "token_mean")
