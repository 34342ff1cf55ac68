"""No completion makes a term raise, hang or return a non-finite value (both presets, every term)."""

from __future__ import annotations

import math

import pytest
from grit_reward_testkit import ExactMatchJudge, load_preset, make_row, word_token_ids

from grit_exp.rewards import REWARD_TERMS, RewardContext, compute_rewards

BOX = "[123, 45, 678, 90] "
NASTY = {
    "empty": "",
    "long_words": "word " * 20_000,  # 100k characters
    "long_no_spaces": "x" * 100_000,
    "long_digits": "1" * 100_000,
    "long_commas": "1, " * 33_000,
    "long_spaces_after_comma": "1," + " " * 100_000 + "2",
    "unicode": "<think> 猫😀 é ١٢, ٣, ٤, ٥ </think><rethink>ß</rethink><answer> ✓ 🐈 </answer>" * 50,
    "thirty_digit_box": "<think> ["
    + ", ".join(["123456789012345678901234567890"] * 4)
    + "] </think><rethink>r</rethink><answer> 123456789012345678901234567890 </answer>",
    "thousand_digit_box": "<think> "
    + ", ".join(["9" * 1000] * 4)
    + " </think><rethink>r</rethink><answer>1</answer>",
    "thousands_of_boxes": "<think> " + BOX * 5000 + "</think><rethink> r </rethink><answer> 5000 </answer>",
    "unbalanced": "<think><think><rethink></think></rethink><answer><answer></answer>" * 500,
    "repeated_tags": "<answer>" * 10_000,
    "only_closing": "</answer></think></rethink>" * 1000,
    "repetitive": "the same eight words are repeated over and " * 2000,
    "nul_and_controls": "\x00\x01\x1c<think>\x1f a b</think>\u2028<rethink>\x0b</rethink><answer>\x00</answer>",
}
ROWS = {
    "vsr": make_row("vsr", "tv"),
    "tallyqa": make_row("tallyqa", "3"),
    "tallyqa_huge": make_row("tallyqa", "123456789012345678901234567890"),
    "ovd": make_row("ovd_position", "[1, 2, 3, 4]", answer_box=[1.0, 2.0, 3.0, 4.0]),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("term", sorted(REWARD_TERMS))
def test_every_term_on_nasty_completions(term):
    completions = [text for text in NASTY.values() for _ in ROWS]
    rows = [row for _ in NASTY for row in ROWS.values()]
    ctx = RewardContext(
        prompts=["p"] * len(completions),
        token_ids=[word_token_ids(c) for c in completions],
        judge=ExactMatchJudge(),
    )
    values = REWARD_TERMS[term](completions, rows, ctx)
    assert len(values) == len(completions)
    assert all(isinstance(v, float) and math.isfinite(v) for v in values)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("preset", ["grit_code", "grit_paper"])
def test_presets_on_nasty_completions(preset):
    completions = list(NASTY.values())
    rows = [make_row("tallyqa", "3")] * len(completions)
    ctx = RewardContext(
        prompts=["p"] * len(completions),
        token_ids=[list(c.encode()) for c in completions],
        judge=ExactMatchJudge(),
    )
    out = compute_rewards(load_preset(preset), completions, rows, ctx)
    assert all(math.isfinite(v) for v in out.total)
    values = dict(zip(NASTY, out.total, strict=True))
    # bounds of the presets: code in [-0.5, 4.1], paper in [0, 3.1]
    low, high = (-0.5, 4.1) if preset == "grit_code" else (0.0, 3.1)
    assert all(low - 1e-9 <= v <= high + 1e-9 for v in values.values()), values


@pytest.mark.timeout(10)
def test_thousands_of_boxes_count():
    text = "<think> " + BOX * 5000 + "</think><rethink> r </rethink>"
    assert REWARD_TERMS["count"]([text], [make_row("tallyqa", "5000")], RewardContext()) == [1.0]
    assert REWARD_TERMS["count"](
        [text], [make_row("tallyqa", "5000")], RewardContext(), parser="structured"
    ) == [1.0]
