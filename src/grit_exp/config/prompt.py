"""The `prompt` group's schema (conf/prompt/*.yaml): the texts around a question.

Its checks (families named in `family_overrides`) run where the texts are assembled
(grit_exp.data.prompts), since they need the model family.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING


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
