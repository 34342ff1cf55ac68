"""Truncated importance sampling against the sampler's log-probs (`algorithm.tis`, issue #18).

- The weights, by hand: w = exp(logp_old - logp_sampler) per token (or per completion, the exponent summed
  over its tokens), truncated at clip_max (and clip_min) or zeroed outside [clip_min, clip_max].
- The loss with the weights equals TRL's own `GRPOTrainer._compute_loss` given the same weights as its
  `importance_sampling_ratio` (TRL 1.16's vLLM correction multiplies each token's policy loss before the KL
  term is added), for every aggregation, with and without KL: value and gradient to 1e-6.
- Off (the paper's recipe): no weights at all. With rollout=hf (no sampler log-probs) the option is
  refused in one line naming the key.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from grit_exp.algorithm.losses import importance_sampling_weights, policy_loss, truncated_is_weights
from grit_exp.config import validate_train
from grit_exp.errors import ConfigError
from tests.algorithm.test_losses_vs_trl import MAX_COMPLETION_LENGTH, TOL, VARIANTS, _case, _trl_stand_in
from tests.helpers.configs import compose_config

GRPOTrainer = pytest.importorskip("trl.trainer.grpo_trainer", reason="trl is a test-only dependency").GRPOTrainer


def _sampler(case: dict, seed: int) -> torch.Tensor:
    """Sampler log-probs off the trainer's by up to +-1.2 nats: ratios from 0.3 to 3.3, many beyond C = 2."""
    gen = torch.Generator().manual_seed(100 + seed)
    return case["logp"] + (torch.rand(case["logp"].shape, generator=gen, dtype=torch.float64) - 0.5) * 2.4


@pytest.mark.parametrize("seed", [0, 1])
def test_the_weights_by_hand(seed):
    case = _case(seed, 0.0, off_policy=False)
    logp, mask, sampler = case["logp"], case["mask"], _sampler(case, seed)
    ratio = torch.exp(logp - sampler)
    valid = mask.bool()
    assert (ratio[valid] > 2).any() and (ratio[valid] < 0.5).any(), "the case truncates"

    w, outside = importance_sampling_weights(logp, sampler, mask, mode="token_truncate", clip_max=2.0)
    assert torch.allclose(w[valid], ratio.clamp(max=2.0)[valid], atol=1e-12, rtol=0)
    assert torch.equal(outside, (ratio > 2.0) & valid)
    w, _ = importance_sampling_weights(logp, sampler, mask, mode="token_truncate", clip_max=2.0, clip_min=0.5)
    assert torch.allclose(w[valid], ratio.clamp(0.5, 2.0)[valid], atol=1e-12, rtol=0)
    w, outside = importance_sampling_weights(logp, sampler, mask, mode="token_mask", clip_max=2.0, clip_min=0.5)
    expected = torch.where((ratio > 2.0) | (ratio < 0.5), torch.zeros_like(ratio), ratio)
    assert torch.allclose(w[valid], expected[valid], atol=1e-12, rtol=0)
    assert torch.equal(outside, ((ratio > 2.0) | (ratio < 0.5)) & valid)

    per_sequence = torch.exp(((logp - sampler) * mask).sum(-1, keepdim=True)).expand_as(logp)
    w, _ = importance_sampling_weights(logp, sampler, mask, mode="sequence_truncate", clip_max=2.0)
    assert torch.allclose(w[valid], per_sequence.clamp(max=2.0)[valid], atol=1e-12, rtol=0)
    w, _ = importance_sampling_weights(logp, sampler, mask, mode="sequence_mask", clip_max=3.0)
    expected = torch.where(per_sequence > 3.0, torch.zeros_like(per_sequence), per_sequence)
    assert torch.allclose(w[valid], expected[valid], atol=1e-12, rtol=0)
    # the weights carry no gradient
    grad_logp = logp.clone().requires_grad_(True)
    assert not importance_sampling_weights(grad_logp, sampler, mask, mode="token_truncate", clip_max=2.0)[0].requires_grad


def _trl_loss_with_ratio(case, ratio, loss_type, beta, eps_low, eps_high):
    logp = case["logp"].clone().requires_grad_(True)
    stand_in = _trl_stand_in(loss_type, beta, eps_low, eps_high, logp)
    stand_in.use_vllm = stand_in.vllm_importance_sampling_correction = True
    mask = case["mask"]
    inputs = {"prompt_ids": torch.zeros(mask.shape[0], 2, dtype=torch.long),
              "prompt_mask": torch.ones(mask.shape[0], 2, dtype=torch.long),
              "completion_ids": torch.zeros_like(mask), "completion_mask": mask, "advantages": case["advantages"],
              "num_items_in_batch": mask.sum(), "importance_sampling_ratio": ratio}
    if case["ref"] is not None:
        inputs["ref_per_token_logps"] = case["ref"]
    loss = GRPOTrainer._compute_loss(stand_in, None, inputs)
    loss.backward()
    return loss.detach(), logp.grad


@pytest.mark.parametrize("mode", ["token_truncate", "sequence_mask"])
@pytest.mark.parametrize("beta", [0.0, 0.01])
@pytest.mark.parametrize(("aggregation", "loss_type", "eps_low", "eps_high"), VARIANTS, ids=[v[1] for v in VARIANTS])
def test_the_weighted_loss_matches_trl(aggregation, loss_type, eps_low, eps_high, beta, mode):
    case = _case(0, beta, off_policy=False)
    sampler = _sampler(case, 0)
    tis = SimpleNamespace(mode=mode, clip_max=2.0 if mode == "token_truncate" else 3.0, clip_min=None)
    weights = truncated_is_weights(tis, case["logp"], sampler, case["mask"])
    trl_loss, trl_grad = _trl_loss_with_ratio(case, weights[0], loss_type, beta, eps_low, eps_high)
    logp = case["logp"].clone().requires_grad_(True)
    out = policy_loss(logp, None, case["ref"], case["advantages"], case["mask"], beta=beta, epsilon_low=eps_low,
                      epsilon_high=eps_high, aggregation=aggregation, max_completion_length=MAX_COMPLETION_LENGTH,
                      is_weights=weights)
    out.loss.backward()
    assert torch.allclose(out.loss.detach(), trl_loss, rtol=0, atol=TOL), (out.loss.item(), trl_loss.item())
    assert torch.allclose(logp.grad, trl_grad, rtol=0, atol=TOL)
    plain = policy_loss(case["logp"], None, case["ref"], case["advantages"], case["mask"], beta=beta,
                        epsilon_low=eps_low, epsilon_high=eps_high, aggregation=aggregation,
                        max_completion_length=MAX_COMPLETION_LENGTH)
    assert not torch.allclose(out.loss.detach(), plain.loss), "the weights changed the loss"
    valid = case["mask"].bool()
    assert out.is_weight_mean.item() == pytest.approx(float(weights[0][valid].mean()))
    assert 0 < out.is_clipped_fraction.item() < 1


def test_off_is_no_weight_at_all():
    case = _case(0, 0.0, off_policy=False)
    assert truncated_is_weights(SimpleNamespace(mode="off", clip_max=2.0, clip_min=None), case["logp"], None,
                                case["mask"]) is None
    with pytest.raises(RuntimeError, match="recorded no sampler log-probs"):
        truncated_is_weights(SimpleNamespace(mode="token_truncate", clip_max=2.0, clip_min=None), case["logp"], None,
                             case["mask"])


def test_the_paper_recipe_is_off_and_rollout_hf_refuses_it():
    for algorithm in ("grpo", "dapo", "dr_grpo"):
        assert compose_config("train", f"algorithm={algorithm}").algorithm.tis.mode == "off"
    validate_train(compose_config("train", "rollout=vllm", "algorithm.tis.mode=token_truncate"))
    with pytest.raises(ConfigError, match=r"^algorithm.tis.mode='token_truncate' needs the sampler's log-probs, which "
                                          r"only rollout=vllm records; rollout.kind='hf'"):
        validate_train(compose_config("train", "algorithm.tis.mode=token_truncate"))
    with pytest.raises(ConfigError, match="algorithm.tis.clip_max=0.0"):
        validate_train(compose_config("train", "rollout=vllm", "algorithm.tis.mode=token_mask", "algorithm.tis.clip_max=0"))
    with pytest.raises(ConfigError, match="algorithm.logprob_temperature='one' scores raw logits"):
        validate_train(compose_config("train", "rollout=vllm", "algorithm.tis.mode=token_truncate",
                                      "algorithm.logprob_temperature=one"))
