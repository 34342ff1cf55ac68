"""The `reward` group's schema (conf/reward/*.yaml) and its checks (term names and options).

Left out: the terms themselves (grit_exp.rewards; its registry is light, no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from grit_exp.errors import ConfigError


@dataclass
class RewardConfig:
    name: str = MISSING
    # term name -> weight. Terms with weight 0 are still computed and logged.
    weights: dict[str, float] = field(default_factory=dict)
    # term name -> options for that term (validated by the term itself)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # datasets whose rows are counting questions (the count term applies to these rows only)
    counting_datasets: list[str] = field(default_factory=lambda: ["tallyqa", "synth_count"])


def check_reward(reward: Any) -> None:
    """ConfigError naming an unknown reward term or a bad `reward.options.<term>.<key>`."""
    from grit_exp.rewards import check_reward_config  # light: no torch

    try:
        check_reward_config(reward)
    except ValueError as err:
        raise ConfigError(str(err)) from err
