"""Policy-gradient losses of the GRPO family, and the supervised loss.

Per token: ratio r = exp(logp - logp_old) clipped to [1 - eps_low, 1 + eps_high]; loss
-min(r A, clip(r) A) + beta * KL, with the k3 estimator KL = exp(ref - logp) - (ref - logp) - 1.
With one update per generation (num_iterations = 1) logp_old is logp detached, so r == 1; with
`algorithm.logprob_temperature=one` (raw logits) the gradient is then that of the released GRIT code,
with the default "sampling" the log-probs are those of the policy that sampled (logits / T). The variants differ in how token losses are reduced:

- `seq_mean_token_mean` (GRPO, the released code): mean over each sequence's tokens, then over sequences;
- `token_mean` (DAPO): mean over all tokens of the batch;
- `seq_mean_token_sum_norm` (Dr. GRPO): token sum divided by (sequences x max completion length).

Truncated importance sampling (`algorithm.tis`, off in the paper's recipe), as TRL's vLLM correction:
the sampler (vLLM) and the trainer compute the same policy with different kernels, so the tokens were
drawn from a slightly different distribution than the one the loss scores. Each token's policy loss is
multiplied (before the KL term is added) by the detached weight w = exp(logp_old - logp_sampler)
(logp_old: the training model's log-prob before the update, logp itself with one update per
generation): `token_truncate` w = min(w, clip_max) (and >= clip_min when set), `token_mask` w = 0
outside [clip_min, clip_max]; the `sequence_*` modes use one weight per completion, the exponent
summed over its tokens. TRL 1.16's default is `sequence_mask` at C = 3; the TIS paper's and TRL's
first default, token-level truncation at C = 2, is this option's `token_truncate` with clip_max 2.
The sampler's log-probs are those of the distribution it sampled (top-k / top-p applied, as TRL's), so
with a truncating top-k the weights also carry the truncation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class LossOutput:
    loss: torch.Tensor
    kl: torch.Tensor  # mean k3 KL per token (0 when no reference)
    clip_fraction: torch.Tensor  # fraction of tokens whose ratio was clipped
    is_weight_mean: torch.Tensor | None = None  # algorithm.tis: mean importance weight per token (None: off)
    is_clipped_fraction: torch.Tensor | None = None  # ... fraction of tokens whose weight was truncated or masked


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


def importance_sampling_weights(train_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor, *,
                                mode: str, clip_max: float, clip_min: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(weights [B, T], which of them were truncated or masked [B, T] bool), detached, for `algorithm.tis.mode`
    (see the module docstring); padding positions get weight 1 (the mask removes them from the loss)."""
    maskf = mask.to(train_logp.dtype)
    diff = ((train_logp.detach() - sampler_logp.to(train_logp.dtype)) * maskf).nan_to_num(0.0)
    if mode.startswith("sequence_"):
        diff = diff.sum(-1, keepdim=True).expand_as(train_logp)
    elif not mode.startswith("token_"):
        raise ValueError(f"algorithm.tis.mode={mode!r} is not valid; choose 'off', 'token_truncate', 'token_mask', "
                         "'sequence_truncate' or 'sequence_mask'")
    ratio = torch.exp(diff)
    low = clip_min if clip_min is not None else 0.0
    outside = ((ratio > clip_max) | (ratio < low)) & mask.bool()
    if mode.endswith("_truncate"):
        weights = torch.clamp(ratio, min=low, max=clip_max)
    elif mode.endswith("_mask"):
        weights = ratio.masked_fill(outside, 0.0)
    else:
        raise ValueError(f"algorithm.tis.mode={mode!r} is not valid; choose 'off', 'token_truncate', 'token_mask', "
                         "'sequence_truncate' or 'sequence_mask'")
    return weights, outside


def truncated_is_weights(tis: Any, train_logp: torch.Tensor, sampler_logp: torch.Tensor | None,
                         mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """`algorithm.tis`'s weights for a micro-batch: the trainer's log-probs before the update (`train_logp`)
    against the sampler's (`Rollout.sampler_logprobs`); None when the correction is off."""
    if str(tis.mode) == "off":
        return None
    if sampler_logp is None:
        raise RuntimeError(f"algorithm.tis.mode={str(tis.mode)!r} but the rollout recorded no sampler log-probs")
    return importance_sampling_weights(train_logp, sampler_logp.to(train_logp.device), mask, mode=str(tis.mode),
                                       clip_max=float(tis.clip_max),
                                       clip_min=None if tis.clip_min is None else float(tis.clip_min))


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
    is_weights: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LossOutput:
    """GRPO-family loss for per-token log-probs [B, T], advantages [B] and a completion mask [B, T];
    `is_weights`: `importance_sampling_weights(...)` multiplying each token's policy loss (None: no correction)."""
    if old_logp is None:
        old_logp = logp.detach()
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    adv = advantages[:, None].to(logp.dtype)
    per_token = -torch.min(ratio * adv, clipped * adv)
    maskf = mask.to(logp.dtype)
    is_mean = is_clipped = None
    if is_weights is not None:
        weights, outside = is_weights
        per_token = per_token * weights.to(logp.dtype)
        is_mean = ((weights * maskf).sum() / maskf.sum().clamp(min=1.0)).detach()
        is_clipped = ((outside.to(logp.dtype) * maskf).sum() / maskf.sum().clamp(min=1.0)).detach()
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
    return LossOutput(loss, mean_kl.detach(), clip_fraction.detach(), is_mean, is_clipped)


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of the target tokens, averaged over all target tokens."""
    return aggregate(-logp, mask, "token_mean")
