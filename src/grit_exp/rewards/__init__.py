"""Reward terms (a registry of pure functions), the GRIT presets' terms, and their weighted total.

`REWARD_TERMS` maps a term name to its function; `compute_rewards` runs the terms of a
`RewardConfig` over a batch. Nothing here imports torch. The term modules are imported here, once
(importing them registers their terms with the registry, which imports none of them).
"""

from grit_exp.rewards import answer_terms, format_terms, tool_use  # noqa: F401  (importing them registers their terms)
from grit_exp.rewards.registry import (
    REWARD_TERMS,
    TERM_OPTIONS,
    RewardContext,
    RewardOptionError,
    check_term_options,
    parse_options,
    reward_term,
)
from grit_exp.rewards.total import RewardBreakdown, check_reward_config, compute_rewards

__all__ = [
    "REWARD_TERMS",
    "TERM_OPTIONS",
    "RewardBreakdown",
    "RewardContext",
    "RewardOptionError",
    "check_reward_config",
    "check_term_options",
    "compute_rewards",
    "parse_options",
    "reward_term",
]
