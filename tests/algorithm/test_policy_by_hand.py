"""Losses and advantages on examples small enough to work out by hand (no TRL needed).

- The released GRIT code's loss (grit.md section 3): one update per generation, so the ratio is 1 and
  the per-token loss is -(A - beta * KL) with the k3 KL; mean over each sequence's completion tokens,
  then over sequences. Checked on a 2 x 3 example, value and gradient, in closed form.
- Advantages A = (r - group mean) / (unbiased group std + eps) on one group of four, for eps 1e-4
  (released code) and 1e-8 (paper), with batch and no scaling, and the zero-std fraction.
- The errors raised for invalid settings.
"""

from __future__ import annotations

import math

import pytest
import torch

from grit_exp.algorithm.advantages import advantages_from_rewards
from grit_exp.algorithm.losses import aggregate, k3_kl, policy_loss, sft_loss

LN2 = math.log(2.0)


def _released_example():
    """A = [1, -0.5]; second sequence has 2 tokens; ref - logp is ln 2 on two valid tokens, 0 elsewhere.

    k3 KL at ref - logp = ln 2 is e^{ln 2} - ln 2 - 1 = 1 - ln 2; at 0 it is 0. The padded token carries
    a large KL (ref - logp = 5) that must be ignored.
    """
    logp = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[0.0, LN2, 0.0], [LN2, 0.0, 5.0]], dtype=torch.float64)
    advantages = torch.tensor([1.0, -0.5], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    return logp, ref, advantages, mask


def test_released_code_loss_by_hand():
    logp, ref, advantages, mask = _released_example()
    beta = 0.01
    out = policy_loss(
        logp,
        None,
        ref,
        advantages,
        mask,
        beta=beta,
        epsilon_low=0.2,
        epsilon_high=0.2,
        aggregation="seq_mean_token_mean",
    )
    # Sequence 1: tokens -1, -1 + beta (1 - ln 2), -1            -> mean -1 + beta (1 - ln 2) / 3
    # Sequence 2: tokens 0.5 + beta (1 - ln 2), 0.5 (pad ignored) -> mean 0.5 + beta (1 - ln 2) / 2
    # Batch mean: (-0.5 + beta (1 - ln 2) (1/3 + 1/2)) / 2 = -0.25 + beta (1 - ln 2) 5 / 12
    expected = -0.25 + beta * (1 - LN2) * 5 / 12
    assert out.loss.item() == pytest.approx(expected, abs=1e-12)
    # Mean KL over the 5 valid tokens: 2 (1 - ln 2) / 5. Ratio 1: nothing clipped.
    assert out.kl.item() == pytest.approx(2 * (1 - LN2) / 5, abs=1e-12)
    assert out.clip_fraction.item() == 0.0

    out.loss.backward()
    # d/dlogp of token loss: -A (ratio e^{logp - logp_old} has derivative 1 at ratio 1)
    # + beta d/dlogp[e^{ref-logp} - (ref-logp) - 1] = beta (1 - e^{ref-logp}): -beta at ln 2, 0 at 0.
    # Each token is weighted 1 / (its sequence's length x 2 sequences).
    expected_grad = torch.tensor(
        [
            [-1 / 6, (-1 - beta) / 6, -1 / 6],
            [(0.5 - beta) / 4, 0.5 / 4, 0.0],
        ],
        dtype=torch.float64,
    )
    assert torch.allclose(logp.grad, expected_grad, rtol=0, atol=1e-12)


def test_released_code_loss_without_kl_is_minus_mean_advantage():
    logp, _, advantages, mask = _released_example()
    out = policy_loss(
        logp,
        None,
        None,
        advantages,
        mask,
        beta=0.0,
        epsilon_low=0.2,
        epsilon_high=0.28,
        aggregation="seq_mean_token_mean",
    )
    assert out.loss.item() == pytest.approx(-0.25, abs=1e-12)
    assert out.kl.item() == 0.0


def test_aggregations_by_hand():
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 100.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert aggregate(per_token, mask, "seq_mean_token_mean").item() == pytest.approx((2.0 + 4.5) / 2)
    assert aggregate(per_token, mask, "token_mean").item() == pytest.approx(15.0 / 5)
    assert aggregate(per_token, mask, "seq_mean_token_sum_norm", 10).item() == pytest.approx(15.0 / 20)
    assert k3_kl(torch.tensor(0.0), torch.tensor(LN2)).item() == pytest.approx(1 - LN2)
    assert sft_loss(-per_token, mask).item() == pytest.approx(3.0)


@pytest.mark.parametrize("eps", [1e-4, 1e-8])
def test_group_advantages_by_hand(eps):
    # Rewards [1, 0, 0, 0]: mean 0.25; unbiased variance (0.75^2 + 3 x 0.25^2) / 3 = 0.25, std 0.5.
    adv = advantages_from_rewards(
        torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]), 4, scale="group", eps=eps
    )
    expected = [0.75 / (0.5 + eps)] + [-0.25 / (0.5 + eps)] * 3 + [0.0] * 4
    assert adv.values.tolist() == pytest.approx(expected, abs=1e-6)
    assert adv.group_mean.tolist() == pytest.approx([0.25, 2.0])
    assert adv.group_std.tolist() == pytest.approx([0.5, 0.0])
    assert adv.frac_zero_std == 0.5


def test_batch_and_unscaled_advantages_by_hand():
    rewards = torch.tensor([1.0, 0.0, 3.0, 3.0])
    # Group means 0.5 and 3; batch std: mean 1.75, squares 0.5625 + 3.0625 + 1.5625 + 1.5625 = 6.75, / 3 -> 2.25.
    unscaled = advantages_from_rewards(rewards, 2, scale="none")
    assert unscaled.values.tolist() == pytest.approx([0.5, -0.5, 0.0, 0.0])
    batch = advantages_from_rewards(rewards, 2, scale="batch", eps=1e-4)
    assert batch.values.tolist() == pytest.approx([0.5 / 1.5001, -0.5 / 1.5001, 0.0, 0.0], abs=1e-7)
    assert batch.frac_zero_std == 0.5


def test_frac_zero_std_counts_groups():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert advantages_from_rewards(rewards, 4).frac_zero_std == pytest.approx(2 / 3)
    assert advantages_from_rewards(torch.tensor([0.0, 1.0, 0.5, 0.2]), 2).frac_zero_std == 0.0


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="scale_rewards='grp'"):
        advantages_from_rewards(torch.zeros(4), 2, scale="grp")
    with pytest.raises(ValueError, match="groups of 3"):
        advantages_from_rewards(torch.zeros(4), 3)
    per_token = torch.zeros(2, 3)
    mask = torch.ones(2, 3)
    with pytest.raises(ValueError, match="loss_aggregation='seq_mean'"):
        aggregate(per_token, mask, "seq_mean")
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate(per_token, mask, "seq_mean_token_sum_norm")
    with pytest.raises(ValueError, match="reference log-probs"):
        policy_loss(
            per_token,
            None,
            None,
            torch.zeros(2),
            mask,
            beta=0.01,
            epsilon_low=0.2,
            epsilon_high=0.2,
            aggregation="token_mean",
        )
