"""The offline, deterministic rules judge (`judge=rules`, the default).

The reference answer decides which rule applies, in this order:

1. multiple-choice letter ("B", "(B)", "B.") -> the prediction's chosen letter: the whole answer
   ("b", "(B)"), a leading "B." / "(B)" / "B)", "the answer is B", "option B", or a "(B)" anywhere;
2. yes/no (also true/false) -> the first yes/no/true/false word of the prediction;
3. a number (digits, "1,000", "3.0", or a number word "zero".."ninety-nine", "none") -> the last
   number in digits of the prediction, else its last number word; a prediction without numbers that
   says "no" counts as 0 ("there are no dogs");
4. otherwise normalised text (lower case, punctuation and articles a/an/the removed): exact match,
   or the reference phrase appearing as whole words inside the prediction ("a red car" in "it is a
   red car").

Scores are 0 or 1. `raw` says which rule decided, so evaluation samples show why.

Left out: synonyms, plurals, units, option-text-to-letter mapping (the options are not passed),
partial credit (a token-overlap score would turn "blue car" vs "red car" into a positive reward
once binarised).
"""

from __future__ import annotations

import re

from grit_exp.judge.base import JudgeRequest, JudgeResult, JudgeStats

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
NUMBER_WORDS: dict[str, int] = {word: value for value, word in enumerate(_UNITS)} | _TENS | {"none": 0}

_ARTICLES = {"a", "an", "the"}
_YES_NO = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
_LETTER_REFERENCE = re.compile(r"^\(?([A-Ha-h])\)?[.:)]?$")
# Prediction patterns, most specific first. Letters are upper case except in the whole-answer form,
# so "the answer is a cat" does not read as option A.
_LETTER_PREDICTION = (
    re.compile(r"^\s*\(?([A-Ha-h])\)?[.:)]?\s*$"),
    re.compile(r"^\s*\(?([A-H])(?:\)|[.:]\s|\s*$)"),
    re.compile(r"(?i:answer|option|choice)\s*(?i:is)?\s*:?\s*\(?([A-H])\b"),
    re.compile(r"\(([A-H])\)"),
)
_ANSWER_TAG = re.compile(r"</?answer>", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?|\d[\d,]*(?:\.\d+)?|\.\d+")


def _number_from_word(word: str) -> float | None:
    if word in NUMBER_WORDS:
        return float(NUMBER_WORDS[word])
    tens, _, unit = word.partition("-")
    if tens in _TENS and unit in _UNITS[1:10]:
        return float(_TENS[tens] + _UNITS.index(unit))
    return None


def _numbers(text: str) -> list[float]:
    """Numbers in reading order: digits ("1,000", "3.5") and number words ("three", "twenty-one",
    "twenty one")."""
    tokens = _WORD.findall(text.lower())
    values: list[float] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token[0].isdigit() or token[0] == ".":
            digits = token.replace(",", "")
            try:
                values.append(float(digits))
            except ValueError:  # e.g. "1,2,3" stays a list: take its parts
                values.extend(float(part) for part in token.split(",") if part)
        else:
            value = _number_from_word(token)
            if value is not None:
                nxt = tokens[index + 1] if index + 1 < len(tokens) else ""
                if token in _TENS and nxt in _UNITS[1:10]:  # "twenty one"
                    value += _UNITS.index(nxt)
                    index += 1
                values.append(value)
        index += 1
    return values


def normalize_text(text: str) -> str:
    """Lower case, punctuation to spaces (a decimal point stays, a thousands comma goes), articles
    dropped, spaces collapsed."""
    text = text.lower()
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # "1,000" -> "1000"
    text = re.sub(r"(?<=\d)\.(?=\d)", "\0", text)  # protect the point of "3.5"
    text = re.sub(r"[^\w\s\0]|_", " ", text).replace("\0", ".")
    return " ".join(word for word in text.split() if word not in _ARTICLES)


def _reference_number(reference: str) -> float | None:
    """The reference as a number when it is one: "3", "3.0", "1,000", "three", "twenty one", or a
    number followed by one word ("3 dogs"); "no one" is not a number."""
    words = normalize_text(reference).split()
    if not 1 <= len(words) <= 3 or not _numbers(words[0]):
        return None
    found = _numbers(" ".join(words))
    return found[0] if len(found) == 1 and len(words) <= 2 + (words[0] in _TENS) else None


def _said_number(prediction: str) -> float | None:
    """The number a prediction gives: its last number in digits, else its last number word (so in
    "3 cats, one of them black" the answer is 3)."""
    digit_numbers = _numbers(re.sub(r"[a-z]+", " ", prediction.lower()))
    if digit_numbers:
        return digit_numbers[-1]
    found = _numbers(prediction)
    if found:
        return found[-1]
    return 0.0 if "no" in normalize_text(prediction).split() else None


def _chosen_letter(prediction: str) -> str | None:
    for pattern in _LETTER_PREDICTION:
        match = pattern.search(prediction)
        if match:
            return match.group(1).upper()
    return None


def judge_answer(reference: str, prediction: str) -> tuple[float, str]:
    """(score in {0, 1}, the rule that decided) for one answer. Stray <answer>/</answer> tags in the
    prediction (a caller that passed everything after <answer>) are ignored."""
    prediction = _ANSWER_TAG.sub(" ", prediction)
    letter = _LETTER_REFERENCE.match(reference.strip())
    if letter:
        chosen = _chosen_letter(prediction)
        return float(
            chosen == letter.group(1).upper()
        ), f"choice: reference={letter.group(1).upper()} chosen={chosen}"

    ref_norm = normalize_text(reference)
    if ref_norm in _YES_NO:
        words = [_YES_NO[w] for w in normalize_text(prediction).split() if w in _YES_NO]
        said = words[0] if words else None
        return float(said == _YES_NO[ref_norm]), f"yes/no: reference={_YES_NO[ref_norm]} said={said}"

    ref_number = _reference_number(reference)
    if ref_number is not None:
        said_number = _said_number(prediction)
        correct = said_number is not None and abs(said_number - ref_number) < 1e-6
        return float(
            correct
        ), f"number: reference={ref_number:g} said={'none' if said_number is None else f'{said_number:g}'}"

    pred_norm = normalize_text(prediction)
    if not ref_norm:
        return 0.0, "text: empty reference"
    if pred_norm == ref_norm:
        return 1.0, "text: exact match"
    if f" {ref_norm} " in f" {pred_norm} ":
        return 1.0, "text: reference contained"
    return 0.0, "text: no match"


class RulesJudge:
    """Deterministic, offline judge: one of the rules above per answer; never fails."""

    name = "rules"

    def __init__(self) -> None:
        self.stats = JudgeStats()

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        results = []
        for request in requests:
            value, rule = judge_answer(request.reference, request.prediction)
            results.append(JudgeResult(score=value, raw=rule, failed=False))
        self.stats.answers += len(requests)
        return results

    async def ascore(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        return self.score(requests)

    def __repr__(self) -> str:
        return "RulesJudge()"
