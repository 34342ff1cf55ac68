"""Answer judges: `rules` (offline, deterministic) and `openai` (any OpenAI-compatible endpoint).

Importing this package does not import `openai`; `build_judge` does, for `judge.kind=openai`.
"""

from grit_exp.judge.base import Judge, JudgeRequest, JudgeResult, JudgeStats
from grit_exp.judge.factory import build_judge
from grit_exp.judge.prompt import build_judge_prompt, parse_score, parse_score_released
from grit_exp.judge.rules import RulesJudge, judge_answer

__all__ = [
    "Judge",
    "JudgeRequest",
    "JudgeResult",
    "JudgeStats",
    "RulesJudge",
    "build_judge",
    "build_judge_prompt",
    "judge_answer",
    "parse_score",
    "parse_score_released",
]
