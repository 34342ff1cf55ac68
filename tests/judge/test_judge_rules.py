"""The rules judge: a table of (reference, prediction, score) and a property over random text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grit_exp.judge import JudgeRequest, RulesJudge, judge_answer
from grit_exp.judge.rules import normalize_text

CASES = [
    # numbers: digits, words, GRIT answer text with its newlines, last number in digits
    ("3", "3", 1.0),
    ("3", "\n3\n", 1.0),
    ("3", " 3 </answer>", 1.0),
    ("3", "three", 1.0),
    ("three", "3", 1.0),
    ("3", "There are 3 chairs.", 1.0),
    ("3", "There are 4 chairs.", 0.0),
    ("3", "3 cats, one of them black", 1.0),
    ("1", "3 cats, one of them black", 0.0),
    ("0", "zero", 1.0),
    ("0", "There are no dogs.", 1.0),
    ("0", "none", 1.0),
    ("2", "There are no dogs.", 0.0),
    ("12", "twelve", 1.0),
    ("20", "Twenty", 1.0),
    ("21", "twenty-one", 1.0),
    ("21", "twenty one", 1.0),
    ("12", "12.0", 1.0),
    ("1000", "1,000", 1.0),
    ("3.5", "3.5 meters", 1.0),
    ("3", "I cannot tell", 0.0),
    ("5", "The bounding boxes show 5", 1.0),
    # yes / no
    ("yes", "Yes", 1.0),
    ("Yes", "yes, the cat is left of the dog", 1.0),
    ("no", "No.", 1.0),
    ("yes", "no", 0.0),
    ("no", "False", 1.0),
    ("yes", "The cat is on the table", 0.0),
    # multiple-choice letters
    ("B", "(B)", 1.0),
    ("B", "B. 3 apples", 1.0),
    ("B", "B) 3 apples", 1.0),
    ("B", "The answer is B", 1.0),
    ("B", "the answer is: (B)", 1.0),
    ("(B)", "b", 1.0),
    ("B.", "option B", 1.0),
    ("B", "A", 0.0),
    ("A", "the answer is a cat", 0.0),
    ("C", "I think (C) fits best", 1.0),
    ("B", "\nB\n</answer>", 1.0),
    # text
    ("tv", "TV", 1.0),
    ("tv", "the tv.", 1.0),
    ("red car", "It is a red car.", 1.0),
    ("red car", "blue car", 0.0),
    ("cat", "category", 0.0),
    ("left", "right", 0.0),
    ("no one", "nobody", 0.0),
]


@pytest.mark.parametrize(("reference", "prediction", "expected"), CASES)
def test_rules_judge_table(reference: str, prediction: str, expected: float) -> None:
    value, rule = judge_answer(reference, prediction)
    assert value == expected, rule


def test_rules_judge_scores_in_order_and_says_why() -> None:
    judge = RulesJudge()
    results = judge.score([JudgeRequest("q", "3", "three"), JudgeRequest("q", "yes", "no")])
    assert [r.score for r in results] == [1.0, 0.0]
    assert results[0].raw == "number: reference=3 said=3"
    assert not any(r.failed for r in results)
    assert judge.name == "rules" and judge.stats.answers == 2


def test_normalize_text_keeps_numbers_and_drops_articles() -> None:
    assert normalize_text("  The 1,000 Cats, 3.5 kg!  ") == "1000 cats 3.5 kg"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.text(max_size=60))
def test_rules_judge_score_is_0_or_1_for_any_text(reference: str, prediction: str) -> None:
    value, rule = judge_answer(reference, prediction)
    assert value in (0.0, 1.0) and rule
