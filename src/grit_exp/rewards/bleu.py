"""Sentence BLEU-1 (modified unigram precision x brevity penalty) and the released code's tokenisation.

`bleu1(reference, hypothesis)` equals NLTK's
``sentence_bleu([reference], hypothesis, weights=(1, 0, 0, 0))`` with its default (no) smoothing, for
one reference, bit for bit: the score is computed as ``bp * exp(log(p1))`` like NLTK does, where
p1 = clipped unigram matches / max(1, hypothesis length) and bp = 1 if the hypothesis is longer than
the reference, 0 if it is empty, else exp(1 - r / c). When no unigram matches (empty hypothesis,
empty reference, nothing in common) the score is 0.0 (NLTK returns the int 0 there).

`grit_tokens(text)` is the released code's preprocessing: every character outside ASCII letters,
digits and whitespace becomes a space (so a closing ``</answer>`` leaves the word ``answer``), then
lower-case, then split on whitespace.

Left out: several references, higher n-gram orders and smoothing (the rewards use none of them).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_NON_ALNUM = re.compile(r"[^a-zA-Z0-9\s]")


def grit_tokens(text: str, strip_non_alphanumeric: bool = True) -> list[str]:
    """Released BLEU preprocessing: non-alphanumerics -> spaces, lower-case, whitespace split."""
    if strip_non_alphanumeric:
        text = _NON_ALNUM.sub(" ", text)
    return text.lower().split()


def bleu1(reference: Sequence[str], hypothesis: Sequence[str]) -> float:
    """Sentence BLEU with weights (1, 0, 0, 0) of one hypothesis against one reference, in [0, 1]."""
    hyp_counts = Counter(hypothesis)
    ref_counts = Counter(reference)
    matches = sum(min(count, ref_counts[word]) for word, count in hyp_counts.items())
    if matches == 0:
        return 0.0
    hyp_len, ref_len = len(hypothesis), len(reference)
    precision = matches / max(1, hyp_len)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(math.log(precision))
