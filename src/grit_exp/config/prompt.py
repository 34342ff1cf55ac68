"""The `prompt` group's schema (conf/prompt/*.yaml): the texts around a question, and what of the
model's response the answer judge scores (`judged_answer`: the prompt decides, as in the released
scoring, where only the direct query is judged on its whole response).

Its checks (families named in `family_overrides`) run where the texts are assembled
(grit_exp.data.prompts), since they need the model family.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from omegaconf import MISSING


class JudgedAnswer(StrEnum):
    """What of a response the answer judge scores (evaluation ACC)."""

    tagged = "tagged"  # the text between <answer> and </answer>; without <answer>: eval.untagged_answer decides
    whole_response = "whole_response"  # the whole response (the paper's direct query asks for no tags)


@dataclass
class FamilyPromptConfig:
    suffix: str | None = None
    example: str | None = None


@dataclass
class PromptConfig:
    name: str = MISSING
    question_prefix: str = "\nQuestion: "
    suffix: str = ""
    example: str = ""  # one-shot ICL example appended after the suffix
    family_overrides: dict[str, FamilyPromptConfig] = field(default_factory=dict)
    judged_answer: JudgedAnswer = JudgedAnswer.tagged
