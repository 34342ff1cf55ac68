"""Test helper (imported by name: pytest puts this folder on sys.path): a reward term with reward
spread on one dataset's rows only, through the real reward registry.

`test_spread_on_dataset`: on rows of `dataset` ("*": every row), the mean token id of a completion,
which differs between any two different completions of the same length (the G sampled completions
of a group, in practice); on every other row 0.0, so each of their groups has zero spread whatever
the model writes. Dynamic sampling must drop exactly those.
"""

from __future__ import annotations

from dataclasses import dataclass

TERM = "test_spread_on_dataset"


@dataclass(frozen=True)
class SpreadOnDatasetOptions:
    dataset: str = "synth_count"


def spread_on_dataset(completions, rows, ctx, dataset: str = "synth_count") -> list[float]:
    return [sum(ids) / max(len(ids), 1) if dataset in ("*", row.dataset) else 0.0
            for ids, row in zip(ctx.token_ids, rows, strict=True)]


def register() -> None:
    from grit_exp.rewards import REWARD_TERMS, reward_term

    if TERM not in REWARD_TERMS:
        reward_term(TERM, SpreadOnDatasetOptions)(spread_on_dataset)


def unregister() -> None:
    from grit_exp.rewards import REWARD_TERMS, TERM_OPTIONS

    REWARD_TERMS.pop(TERM, None)
    TERM_OPTIONS.pop(TERM, None)
