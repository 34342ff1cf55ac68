"""The hand-worked cases of fixtures/reward_cases.py under both presets (grit_code and grit_paper)."""

from __future__ import annotations

import pytest
from grit_reward_testkit import ExactMatchJudge, load_cases, load_preset, make_row, word_token_ids

from grit_exp.rewards import RewardContext, compute_rewards

CASES = load_cases()
CODE_TERMS = ("judge_accuracy", "bleu1", "answer_format", "repetition", "box_format", "count", "think_format")
PAPER_TERMS = ("format", "count", "judge_accuracy", "bleu1")


def _batch():
    completions = [c["completion"] for c in CASES]
    rows = [make_row(dataset=c["row"][0], answer=c["row"][1], answer_box=c["row"][2]) for c in CASES]
    judge = ExactMatchJudge()
    ctx = RewardContext(
        prompts=["\nQuestion: What? First, think ..." for _ in CASES],
        token_ids=[word_token_ids(c["completion"]) for c in CASES],
        judge=judge,
    )
    return completions, rows, ctx, judge


def test_fixture_is_large_and_ids_unique():
    assert len(CASES) >= 50
    assert len({c["id"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "preset, terms, key", [("grit_code", CODE_TERMS, "code"), ("grit_paper", PAPER_TERMS, "paper")]
)
def test_every_case_every_term(preset, terms, key):
    cfg = load_preset(preset)
    assert tuple(cfg.weights) == terms
    completions, rows, ctx, judge = _batch()
    breakdown = compute_rewards(cfg, completions, rows, ctx)
    mismatches = []
    for i, case in enumerate(CASES):
        expected = dict(zip(terms, case[key], strict=True))
        for term in terms:
            got = breakdown.per_term[term][i]
            if got != pytest.approx(expected[term], abs=1e-12):
                mismatches.append(f"{case['id']}: {term} = {got!r}, expected {expected[term]!r}")
        if breakdown.total[i] != pytest.approx(sum(case[key]), abs=1e-12):
            mismatches.append(f"{case['id']}: total = {breakdown.total[i]!r}, expected {sum(case[key])!r}")
    assert not mismatches, "\n".join(mismatches)
    # the judge was called once, only for completions with <answer> on non-box-answer rows
    assert len(judge.calls) == 1
    expected_requests = sum(1 for c in CASES if "<answer>" in c["completion"] and c["row"][2] is None)
    assert len(judge.calls[0]) == breakdown.judge_requests == expected_requests
    assert breakdown.judge_failures == sum(1 for c in CASES if c["id"] == "judge_failure")
