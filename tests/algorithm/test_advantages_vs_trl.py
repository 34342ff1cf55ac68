"""`grit_exp.algorithm.advantages.advantages_from_rewards` against TRL's own advantage computation.

Method: TRL computes advantages inline in `GRPOTrainer._generate_and_score_completions` (trl 1.16),
so that method is driven whole, unbound, with a small stand-in `self`: text-only string prompts, no
tools, environments or vLLM, beta 0 (no reference forward), one process; `_generate` returns fixed
token ids and `_calculate_rewards` returns the test's rewards as a single reward function of weight 1.
Everything between (padding, the group mean, TRL's `nanstd`, the 1e-4 epsilon, the group / batch /
none scaling, the zero-std fraction it logs as `frac_reward_zero_std`) is TRL's own code. The
`advantages` it returns must equal grit-exp's to 1e-6. TRL is given the rewards in float64, so that
it computes in float64 as grit-exp does (grit-exp rounds the result to float32): in float32 both
would give an all-equal group spurious advantages of ~1e-3 (its mean's rounding error / 1e-4), each
differently, which the last test here pins.
TRL's epsilon is fixed at 1e-4, grit-exp's default; other epsilons are checked by hand in
test_policy_by_hand.py. Left out: TRL's "normalize_then_sum" multi-reward aggregation and its NaN
(unscorable) rewards, which grit-exp does not have.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from grit_exp.algorithm.advantages import advantages_from_rewards

GRPOTrainer = pytest.importorskip(
    "trl.trainer.grpo_trainer", reason="trl is a test-only dependency"
).GRPOTrainer

TOL = 1e-6


class _SingleProcessAccelerator:
    """What TRL's generation-and-scoring step asks of `accelerate.Accelerator`, for exactly one process."""

    num_processes = 1
    process_index = 0
    device = torch.device("cpu")

    @staticmethod
    def gather(tensor: torch.Tensor) -> torch.Tensor:
        return tensor


def _trl_advantages(rewards: torch.Tensor, num_generations: int, scale: str) -> tuple[torch.Tensor, float]:
    """TRL's advantages and logged zero-std fraction for `rewards`, computed by TRL's own method."""
    n = rewards.numel()
    completion_lengths = [1 + i % 3 for i in range(n)]

    def generate(prompts):
        prompt_ids = [[5, 6] for _ in prompts]
        completion_ids = [[7] * length for length in completion_lengths]
        return prompt_ids, completion_ids, None, ["c"] * n, None, {}, None, None

    def calculate_rewards(inputs, prompts, completions, completion_ids_list):
        return rewards.double().view(-1, 1)

    stand_in = SimpleNamespace(
        accelerator=_SingleProcessAccelerator(),
        model=SimpleNamespace(training=True, is_gradient_checkpointing=False),
        environment_factories=None,
        tools=None,
        environments=None,
        _generate=generate,
        _calculate_rewards=calculate_rewards,
        _tokenizer=SimpleNamespace(pad_token_id=0),
        pad_to_multiple_of=None,
        mask_truncated_completions=False,
        args=SimpleNamespace(
            per_device_train_batch_size=n,
            gradient_checkpointing_kwargs=None,
            steps_per_generation=1,
            gradient_accumulation_steps=1,
        ),
        num_iterations=1,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        beta=0.0,
        num_generations=num_generations,
        multi_objective_aggregation="sum_then_normalize",
        reward_weights=torch.ones(1),
        scale_rewards=scale,
        reward_func_names=["reward"],
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _logs={
            "prompt": [],
            "completion": [],
            "rewards": defaultdict(list),
            "advantages": [],
            "extra": defaultdict(list),
        },
        _pending_extra_logs={},
        _pending_metrics={},
        log_multimodal=False,
    )
    output = GRPOTrainer._generate_and_score_completions(stand_in, [{"prompt": "p"} for _ in range(n)])
    return output["advantages"], stand_in._metrics["train"]["frac_reward_zero_std"][-1]


def _rewards(seed: int, num_groups: int, num_generations: int) -> torch.Tensor:
    """GRIT-like rewards (multiples of 0.05 in [0, 4]); one group with all-equal rewards."""
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.randint(0, 81, (num_groups, num_generations), generator=gen).float() * 0.05
    rewards[seed % num_groups] = rewards[seed % num_groups, 0]
    return rewards.reshape(-1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("num_generations", [2, 4, 8])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_advantages_match_trl(scale, num_generations, seed):
    rewards = _rewards(seed, num_groups=3, num_generations=num_generations)
    trl_values, trl_frac_zero = _trl_advantages(rewards, num_generations, scale)
    grit = advantages_from_rewards(rewards, num_generations, scale=scale, eps=1e-4)

    assert grit.values.shape == trl_values.shape == rewards.shape
    assert grit.values.dtype == torch.float32
    assert torch.allclose(grit.values.double(), trl_values, rtol=0, atol=TOL), (
        (grit.values - trl_values).abs().max()
    )
    # One group of three has equal rewards: its advantages are 0, and the fraction is 1/3.
    assert grit.frac_zero_std == pytest.approx(1 / 3)
    if scale != "batch":  # with "batch", TRL logs whether the *batch* std is zero instead
        assert grit.frac_zero_std == pytest.approx(trl_frac_zero, abs=TOL)


def test_advantages_match_trl_on_binary_rewards():
    """0/1 rewards (a binarised judge) with groups of every composition, G = 4 as in the paper."""
    rewards = torch.tensor([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0], dtype=torch.float32)
    for scale in ("group", "batch", "none"):
        trl_values, _ = _trl_advantages(rewards, 4, scale)
        grit = advantages_from_rewards(rewards, 4, scale=scale)
        assert torch.allclose(grit.values.double(), trl_values, rtol=0, atol=TOL), scale
    assert advantages_from_rewards(rewards, 4).frac_zero_std == pytest.approx(2 / 5)


@pytest.mark.parametrize("num_generations", [3, 7, 8])
def test_all_equal_groups_get_exactly_zero_advantage(num_generations):
    """Float32 rewards whose float32 group mean is inexact (e.g. 3.35 x 7) still give advantages of exactly 0."""
    equal = torch.tensor([3.35, 2.65, 0.1, 1.6], dtype=torch.float32).repeat_interleave(num_generations)
    spread = torch.linspace(0.0, 4.0, num_generations)
    rewards = torch.cat([equal, spread])
    for scale in ("group", "batch", "none"):
        grit = advantages_from_rewards(rewards, num_generations, scale=scale)
        assert torch.all(grit.values[: equal.numel()] == 0), scale
        assert torch.any(grit.values[equal.numel() :] != 0), scale
        trl_values, _ = _trl_advantages(rewards, num_generations, scale)
        assert torch.all(trl_values[: equal.numel()] == 0), scale
    assert advantages_from_rewards(rewards, num_generations).frac_zero_std == pytest.approx(4 / 5)
