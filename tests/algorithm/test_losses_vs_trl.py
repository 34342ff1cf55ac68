"""`grit_exp.algorithm.losses.policy_loss` against TRL's own GRPO loss, used as an oracle.

Method: TRL's own code is driven, not re-derived. `GRPOTrainer._compute_loss` (trl 1.16) is called
unbound with a small stand-in `self` that carries exactly the attributes that method reads; its
`_get_per_token_logps_and_entropies` hands back a fixed float64 log-prob tensor that requires grad,
in place of a model forward. The stand-in is single-process (`gather`/`reduce` are the identity, as
they are for one process), in train mode with one gradient-accumulation step and one step per
generation, so TRL's normalisers reduce to one local batch. Loss value, gradient w.r.t. the
log-probs, mean k3 KL and clip fraction (TRL's `kl` and `clip_ratio/region_mean` metrics) must
agree to 1e-6. Every variant below uses this method; none falls back to hand-worked values.

Variant mapping (grit aggregation <-> TRL loss_type):
- `seq_mean_token_mean` (algorithm=grpo)     <-> "grpo"
- `token_mean` (algorithm=dapo, eps_high .28) <-> "dapo" (normaliser num_items_in_batch / processes) and "bnpo"
- `seq_mean_token_sum_norm` (algorithm=dr_grpo) <-> "dr_grpo" (normaliser B x max_completion_length)

Covered: beta 0 and 0.01 (k3 KL against reference log-probs), one update per generation (no
old log-probs: ratio 1) and off-policy updates (old log-probs differ enough that clipping is active
on both sides, with positive and negative advantages), right padding with variable lengths
including an empty completion, several seeds. Left out: TRL's sequence-level importance sampling,
vLLM importance-sampling correction, entropy masking and multi-process / accumulated normalisers
(grit-exp implements none of them).
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from grit_exp.algorithm.losses import policy_loss

GRPOTrainer = pytest.importorskip(
    "trl.trainer.grpo_trainer", reason="trl is a test-only dependency"
).GRPOTrainer

MAX_COMPLETION_LENGTH = 16
TOL = 1e-6

# (grit aggregation, TRL loss_type, epsilon_low, epsilon_high)
VARIANTS = [
    ("seq_mean_token_mean", "grpo", 0.2, 0.2),
    ("token_mean", "dapo", 0.2, 0.28),
    ("token_mean", "bnpo", 0.2, 0.28),
    ("seq_mean_token_sum_norm", "dr_grpo", 0.2, 0.2),
]


class _SingleProcessAccelerator:
    """What TRL's loss asks of `accelerate.Accelerator`, for exactly one process."""

    num_processes = 1
    process_index = 0
    sync_gradients = True

    @staticmethod
    def gather(tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    gather_for_metrics = gather

    @staticmethod
    def reduce(tensor: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
        return tensor


def _trl_stand_in(
    loss_type: str, beta: float, eps_low: float, eps_high: float, logp: torch.Tensor
) -> SimpleNamespace:
    """The attributes `GRPOTrainer._compute_loss` reads; the 'model forward' returns `logp`."""

    def per_token_logps_and_entropies(*args, **kwargs):
        return logp, torch.zeros_like(logp.detach()), None

    return SimpleNamespace(
        _get_per_token_logps_and_entropies=per_token_logps_and_entropies,
        aux_loss_enabled=False,
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level="token",
        beta=beta,
        loss_type=loss_type,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        max_completion_length=MAX_COMPLETION_LENGTH,
        accelerator=_SingleProcessAccelerator(),
        _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )


def _case(seed: int, beta: float, off_policy: bool) -> dict[str, torch.Tensor | None]:
    """Random float64 inputs: 6 completions (one empty) of up to 9 tokens, right-padded."""
    gen = torch.Generator().manual_seed(seed)
    batch, width = 6, 9
    lengths = torch.randint(1, width + 1, (batch,), generator=gen)
    empty, pos, neg, zero = seed % batch, (seed + 1) % batch, (seed + 2) % batch, (seed + 3) % batch
    lengths[empty] = 0  # an empty completion (fully masked row)
    lengths[pos] = lengths[neg] = width  # and full ones
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    logp = -torch.rand(batch, width, generator=gen, dtype=torch.float64) * 3.0
    # Advantages of both signs (and one exact zero).
    advantages = torch.randn(batch, generator=gen, dtype=torch.float64)
    advantages[pos], advantages[neg], advantages[zero] = 1.3, -0.9, 0.0
    old = None
    if off_policy:
        # log-ratio spread of +-0.5 puts many ratios outside [0.8, 1.28] on both sides.
        old = logp + (torch.rand(batch, width, generator=gen, dtype=torch.float64) - 0.5)
    ref = logp + 0.3 * torch.randn(batch, width, generator=gen, dtype=torch.float64) if beta else None
    return {"logp": logp, "old": old, "ref": ref, "advantages": advantages, "mask": mask}


def _trl_loss(case, loss_type: str, beta: float, eps_low: float, eps_high: float):
    logp = case["logp"].clone().requires_grad_(True)
    stand_in = _trl_stand_in(loss_type, beta, eps_low, eps_high, logp)
    mask = case["mask"]
    inputs = {
        "prompt_ids": torch.zeros(mask.shape[0], 2, dtype=torch.long),
        "prompt_mask": torch.ones(mask.shape[0], 2, dtype=torch.long),
        "completion_ids": torch.zeros_like(mask),
        "completion_mask": mask,
        "advantages": case["advantages"],
        "num_items_in_batch": mask.sum(),
    }
    if case["old"] is not None:
        inputs["old_per_token_logps"] = case["old"]
    if case["ref"] is not None:
        inputs["ref_per_token_logps"] = case["ref"]
    loss = GRPOTrainer._compute_loss(stand_in, None, inputs)
    loss.backward()
    return loss.detach(), logp.grad, stand_in._metrics["train"]


def _grit_loss(case, aggregation: str, beta: float, eps_low: float, eps_high: float):
    logp = case["logp"].clone().requires_grad_(True)
    out = policy_loss(
        logp,
        case["old"],
        case["ref"],
        case["advantages"],
        case["mask"],
        beta=beta,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        aggregation=aggregation,
        max_completion_length=MAX_COMPLETION_LENGTH,
    )
    out.loss.backward()
    return out, logp.grad


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("off_policy", [False, True], ids=["ratio1", "clipped"])
@pytest.mark.parametrize("beta", [0.0, 0.01])
@pytest.mark.parametrize(
    ("aggregation", "loss_type", "eps_low", "eps_high"), VARIANTS, ids=[v[1] for v in VARIANTS]
)
def test_policy_loss_matches_trl(aggregation, loss_type, eps_low, eps_high, beta, off_policy, seed):
    case = _case(seed, beta, off_policy)
    trl_loss, trl_grad, trl_metrics = _trl_loss(case, loss_type, beta, eps_low, eps_high)
    grit, grit_grad = _grit_loss(case, aggregation, beta, eps_low, eps_high)

    assert grit.loss.dtype == torch.float64
    assert torch.allclose(grit.loss.detach(), trl_loss, rtol=0, atol=TOL), (grit.loss.item(), trl_loss.item())
    assert torch.allclose(grit_grad, trl_grad, rtol=0, atol=TOL), (grit_grad - trl_grad).abs().max()
    # Padded positions get no gradient.
    assert torch.all(grit_grad[case["mask"] == 0] == 0)
    assert grit.clip_fraction.item() == pytest.approx(trl_metrics["clip_ratio/region_mean"][-1], abs=TOL)
    if beta:
        assert grit.kl.item() == pytest.approx(trl_metrics["kl"][-1], abs=TOL)
    else:
        assert grit.kl.item() == 0.0


@pytest.mark.parametrize("off_policy", [False, True], ids=["ratio1", "clipped"])
def test_cases_exercise_clipping_only_off_policy(off_policy):
    """Guard on the inputs themselves: the off-policy cases really clip, on both sides; ratio-1 cases never."""
    clipped_high = clipped_low = 0
    for seed in (0, 1, 2):
        case = _case(seed, 0.01, off_policy)
        grit, _ = _grit_loss(case, "token_mean", 0.01, 0.2, 0.28)
        if not off_policy:
            assert grit.clip_fraction.item() == 0.0
            continue
        assert grit.clip_fraction.item() > 0.0
        ratio = torch.exp(case["logp"] - case["old"])
        valid = case["mask"].bool()
        adv = case["advantages"][:, None].expand_as(ratio)
        clipped_high += int(((ratio > 1.28) & (adv > 0) & valid).sum())
        clipped_low += int(((ratio < 0.8) & (adv < 0) & valid).sum())
    assert not off_policy or (clipped_high > 0 and clipped_low > 0), (clipped_high, clipped_low)


def test_dapo_and_bnpo_agree_with_each_other_on_one_batch():
    """On one process and one micro-batch, TRL's "dapo" and "bnpo" both normalise by the batch's token count."""
    case = _case(7, 0.01, True)
    dapo, dapo_grad, _ = _trl_loss(case, "dapo", 0.01, 0.2, 0.28)
    bnpo, bnpo_grad, _ = _trl_loss(case, "bnpo", 0.01, 0.2, 0.28)
    assert torch.allclose(dapo, bnpo, rtol=0, atol=1e-12)
    assert torch.allclose(dapo_grad, bnpo_grad, rtol=0, atol=1e-12)


def test_variants_differ_on_variable_lengths():
    """The three aggregations must not collapse into one another when lengths vary (else the oracle test is weak)."""
    case = _case(3, 0.0, True)
    values = {agg: _grit_loss(case, agg, 0.0, 0.2, 0.2)[0].loss.item() for agg, *_ in VARIANTS}
    assert len({round(v, 9) for v in values.values()}) == 3, values
