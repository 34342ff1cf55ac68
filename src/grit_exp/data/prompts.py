"""The user text of a prompt: question_prefix + question + suffix + example (`prompt` config group).

The strings themselves live in conf/prompt/*.yaml (grit, direct, cot, icl1, sft), copied verbatim
from the released code: the released checkpoints were trained on them. A family override replaces
the suffix and/or the example for one model family (InternVL's one-shot variant names ``<box>``
instead of JSON ``bbox_2d``). Deliberately left out: chat templates, system prompts and image
placement (the model adapters own them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from grit_exp.config import MODEL_FAMILIES, PromptConfig


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict | DictConfig) else getattr(obj, key)


def build_user_text(question: str, prompt_cfg: Any, family: str) -> str:
    """``question_prefix + question + suffix + example`` with `family`'s override where one is given."""
    if family not in MODEL_FAMILIES:
        raise ValueError(f"model family {family!r} is not valid; choose one of {', '.join(MODEL_FAMILIES)}")
    overrides = _get(prompt_cfg, "family_overrides") or {}
    unknown = [name for name in overrides if name not in MODEL_FAMILIES]
    if unknown:
        raise ValueError(
            f"prompt.family_overrides has unknown families {unknown}; valid: {', '.join(MODEL_FAMILIES)}"
        )
    suffix = _get(prompt_cfg, "suffix")
    example = _get(prompt_cfg, "example")
    override = overrides.get(family)
    if override is not None:
        if _get(override, "suffix") is not None:
            suffix = _get(override, "suffix")
        if _get(override, "example") is not None:
            example = _get(override, "example")
    return f"{_get(prompt_cfg, 'question_prefix')}{question}{suffix}{example}"


def load_prompt_yaml(path: str | Path) -> DictConfig:
    """A conf/prompt/*.yaml file merged onto the `PromptConfig` schema, without Hydra (its defaults list dropped)."""
    raw = OmegaConf.load(path)
    if not isinstance(raw, DictConfig):
        raise ValueError(f"{path}: a prompt config must be a mapping")
    body = {key: value for key, value in raw.items() if key != "defaults"}
    return OmegaConf.merge(OmegaConf.structured(PromptConfig), body)  # type: ignore[return-value]
