"""The GRIT answer-judge prompt (verbatim from the authors' scoring) and parsers of the judge's score.

`build_judge_prompt` reproduces the released prompt byte for byte: typographic apostrophes in
"model’s" / "Model’s", and a trailing space at the end of the "Question:" and "Standard answer:"
lines. `parse_score` is the released parser made robust; `parse_score_released` is the released
parser itself (kept to measure how often the two disagree).

Left out: sending the prompt (openai_judge.py) and any other judge prompt (e.g. the consistency
check of the paper's cross-modal correlation metric).
"""

from __future__ import annotations

import re

from grit_exp.judge.base import JudgeRequest

# Part of every cached verdict's key (judge/cache.py): bump it when the prompt below or the score
# parser (`parse_score`) changes, so that verdicts of the old wording are not served again.
JUDGE_PROMPT_VERSION = 1

JUDGE_INSTRUCTION = (
    "You are responsible for proofreading the answers, you need to give a score to the model\u2019s answer "
    "by referring to the standard answer, based on the given question. The full score is 1 point and the "
    'minimum score is 0 points. Please output the score in the json form "{score: <score>}". The evaluation '
    "criteria require that the closer the model\u2019s answer is to the standard answer, the higher the score."
)
QUESTION_LINE = "\nQuestion: "
REFERENCE_LINE = " \nStandard answer: "
PREDICTION_LINE = " \nModel\u2019s answer: "


def build_judge_prompt(request: JudgeRequest) -> str:
    """The full user message sent to the judge (no system message, as in the released code)."""
    # Concatenation, not str.format: the template holds literal braces and the answers may too.
    return (
        JUDGE_INSTRUCTION
        + QUESTION_LINE
        + request.question
        + REFERENCE_LINE
        + request.reference
        + PREDICTION_LINE
        + request.prediction
    )


def split_judge_prompt(prompt: str) -> tuple[str, str, str] | None:
    """Inverse of `build_judge_prompt`: (question, reference, prediction), or None if `prompt` is not
    a GRIT judge prompt. Used by the fake server; ambiguous if an answer contains the line markers."""
    if not prompt.startswith(JUDGE_INSTRUCTION + QUESTION_LINE):
        return None
    rest = prompt[len(JUDGE_INSTRUCTION + QUESTION_LINE) :]
    question, sep1, rest = rest.partition(REFERENCE_LINE)
    reference, sep2, prediction = rest.partition(PREDICTION_LINE)
    if not sep1 or not sep2:
        return None
    return question, reference, prediction


# "score" then up to a few non-alphanumeric characters (quotes, colon, asterisks, "is") then a number.
_SCORE_PATTERN = re.compile(
    r"score[\s\"'*_:=]*(?:is|of|=)?[\s\"'*_:=]*(?P<number>[-+]?(?:\d+(?:\.\d*)?|\.\d+))",
    re.IGNORECASE,
)


def parse_score(text: str | None) -> float | None:
    """The judge's score in [0, 1], or None for a malformed reply.

    Accepts `{score: 1}`, `{"score": 0.8}`, `score: 0.5`, `Score: 1.0`, `**Score**: 1`, `score is 0.5`.
    Like the released parser the LAST "score" wins, but only occurrences followed by a number count
    (the released parser would read "{score: 1}. I gave this score because" as a failure -> 0).
    A number outside [0, 1] (e.g. "score: 8" on a 10-point scale) is malformed, not clipped.
    """
    if not text:
        return None
    matches = list(_SCORE_PATTERN.finditer(text))
    if not matches:
        return None
    value = float(matches[-1].group("number"))
    if not 0.0 <= value <= 1.0:
        return None
    return value


def parse_score_released(text: str) -> float:
    """The released parser, faithfully: 0.0 on any failure (so failures look like wrong answers)."""
    try:
        cleaned = re.sub(r"[^\w\s.]", "", text.lower())
        tail = cleaned.split("score")[-1][:5]
        return float(re.sub(r"[^\d.]", "", tail))
    except ValueError:
        return 0.0
