"""Group-relative advantages: A = (r - mean_group) / (scale + eps).

Each prompt's G completions are contiguous in the batch and live on one process, so no
cross-process gather is needed. `scale` is the group's unbiased std ("group", the released code),
the batch's std ("batch") or 1 ("none", Dr. GRPO). Also reports the fraction of groups whose
rewards are all equal: their advantages are 0 and they teach nothing. The statistics are computed
in float64 so that such a group's advantages are exactly 0: in float32 the rounding error of its
mean (~1e-7), divided by std + eps = 1e-4, leaves spurious advantages of up to ~1e-3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Advantages:
    values: torch.Tensor  # [num_prompts * G]
    group_mean: torch.Tensor  # [num_prompts]
    group_std: torch.Tensor  # [num_prompts], unbiased
    frac_zero_std: float  # fraction of groups whose rewards are all equal


def advantages_from_rewards(rewards: torch.Tensor, num_generations: int, scale: str = "group", eps: float = 1e-4) -> Advantages:
    if rewards.ndim != 1 or rewards.numel() % num_generations != 0:
        raise ValueError(f"rewards of shape {tuple(rewards.shape)} do not split into groups of {num_generations}")
    grouped = rewards.double().view(-1, num_generations)
    mean = grouped.mean(dim=1)
    std = grouped.std(dim=1, unbiased=True) if num_generations > 1 else torch.zeros_like(mean)
    centred = grouped - mean[:, None]
    if scale == "group":
        values = centred / (std[:, None] + eps)
    elif scale == "batch":
        values = centred / (rewards.double().std(unbiased=True) + eps)
    elif scale == "none":
        values = centred
    else:
        raise ValueError(f"algorithm.scale_rewards={scale!r} is not valid; choose 'group', 'batch' or 'none'")
    all_equal = (grouped == grouped[:, :1]).all(dim=1)
    return Advantages(values.reshape(-1).float(), mean.float(), std.float(), float(all_equal.float().mean()))
