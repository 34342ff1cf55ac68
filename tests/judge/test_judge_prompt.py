"""The paper's judge prompt, byte for byte, and the score parsers (robust and released)."""

from __future__ import annotations

import pytest

from grit_exp.judge import JudgeRequest, build_judge_prompt, parse_score, parse_score_released
from grit_exp.judge.prompt import split_judge_prompt

# Written out independently of the module: U+2019 apostrophes, a space ending lines 2 and 3.
EXPECTED_PROMPT = (
    "You are responsible for proofreading the answers, you need to give a score to the model\u2019s answer by "
    "referring to the standard answer, based on the given question. The full score is 1 point and the minimum "
    'score is 0 points. Please output the score in the json form "{score: <score>}". The evaluation criteria '
    "require that the closer the model\u2019s answer is to the standard answer, the higher the score.\n"
    "Question: How many {cats}? \n"
    "Standard answer: 3 \n"
    "Model\u2019s answer: three"
)


def test_prompt_is_the_papers_verbatim() -> None:
    prompt = build_judge_prompt(JudgeRequest("How many {cats}?", "3", "three"))
    assert prompt == EXPECTED_PROMPT
    lines = prompt.split("\n")
    assert len(lines) == 4
    assert lines[1].endswith("? ") and lines[2].endswith("3 ")
    assert prompt.count("\u2019") == 3 and "'" not in prompt


def test_split_judge_prompt_inverts_build() -> None:
    request = JudgeRequest("\nQuestion: where?\n First, think...\n", "left", "on the left")
    assert split_judge_prompt(build_judge_prompt(request)) == (
        "\nQuestion: where?\n First, think...\n",
        "left",
        "on the left",
    )
    assert split_judge_prompt("Rate this answer: 3") is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("{score: 1}", 1.0),
        ("{score: 0}", 0.0),
        ('{"score": 0.8}', 0.8),
        ("{'score': 1}", 1.0),
        ("score: 0.5", 0.5),
        ("Score: 1.0", 1.0),
        ("**Score:** 1", 1.0),
        ("The score is 0.5.", 0.5),
        ("score=0.7", 0.7),
        ('```json\n{"score": 1}\n```', 1.0),
        ("{score: 1}. I gave this score because the answers match.", 1.0),
        ("First score: 0, corrected score: 1", 1.0),
        ("{score: .5}", 0.5),
        # malformed: no score, out of range, empty
        ("I think the answer is right.", None),
        ("{score: <score>}", None),
        ("{score: 8}", None),
        ("score: 1.5", None),
        ("score: -1", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_score(reply: str | None, expected: float | None) -> None:
    assert parse_score(reply) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("{score: 1}", 1.0),
        ('{"score": 0.8}', 0.8),
        ("Score: 1.0", 1.0),
        ("no number here", 0.0),  # the released parser turns failures into 0
        ("{score: 1}. I gave this score because", 0.0),  # ... and reads only the text after the LAST "score"
    ],
)
def test_parse_score_released(reply: str, expected: float) -> None:
    assert parse_score_released(reply) == expected
