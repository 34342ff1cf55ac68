"""BLEU-1 against NLTK's sentence_bleu (a test-only dependency) and the released tokenisation."""

from __future__ import annotations

import random
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nltk.translate.bleu_score import sentence_bleu

from grit_exp.rewards.bleu import bleu1, grit_tokens


def nltk_bleu1(reference: list[str], hypothesis: list[str]) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NLTK warns about the zero higher-order n-gram counts
        return sentence_bleu([reference], hypothesis, weights=(1, 0, 0, 0))


def test_hand_worked_values():
    assert bleu1(["3"], ["3", "answer"]) == 0.5
    assert bleu1(["tv"], ["tv"]) == 1.0
    assert bleu1(["red", "car"], ["car"]) == pytest.approx(0.36787944117144233)  # exp(1 - 2/1)
    assert bleu1(["the", "cat"], ["the", "the", "the"]) == pytest.approx(1 / 3)  # clipped


@pytest.mark.parametrize(
    "reference, hypothesis",
    [([], []), ([], ["a"]), (["a"], []), (["a"], ["b"]), (["a", "b"], ["b", "a"]), (["a"] * 5, ["a"])],
)
def test_edge_cases_equal_nltk(reference, hypothesis):
    # NLTK returns the int 0 when no unigram matches (empty hypothesis or reference included); we return 0.0
    assert bleu1(reference, hypothesis) == nltk_bleu1(reference, hypothesis)
    assert isinstance(bleu1(reference, hypothesis), float)


def test_random_corpus_bitwise_equal_nltk():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(12)]
    for _ in range(2000):
        reference = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
        hypothesis = [rng.choice(vocab) for _ in range(rng.randint(0, 30))]
        assert bleu1(reference, hypothesis) == nltk_bleu1(reference, hypothesis), (reference, hypothesis)


@given(st.lists(st.sampled_from("abcde"), max_size=15), st.lists(st.sampled_from("abcdef"), max_size=40))
def test_property_equal_nltk_and_bounded(reference, hypothesis):
    score = bleu1(reference, hypothesis)
    assert score == nltk_bleu1(reference, hypothesis)
    assert 0.0 <= score <= 1.0


def test_released_tokenisation():
    assert grit_tokens("\n3\n</answer>") == ["3", "answer"]
    assert grit_tokens("Yes.") == ["yes"]
    assert grit_tokens("tv ✓ é") == ["tv"]
    assert grit_tokens("[10, 20]") == ["10", "20"]
    assert grit_tokens("a</answer>", strip_non_alphanumeric=False) == ["a</answer>"]
