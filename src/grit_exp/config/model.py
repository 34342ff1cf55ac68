"""The `model` group's schema (conf/model/*.yaml) and its checks.

`family`, `dtype` and `attn_implementation` are enums: OmegaConf refuses any other value when Hydra
composes the config. Left out: loading anything (grit_exp.models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from grit_exp.errors import ConfigError


class ModelFamily(StrEnum):
    qwen2_5_vl = "qwen2_5_vl"
    internvl = "internvl"


class Dtype(StrEnum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class AttnImplementation(StrEnum):
    sdpa = "sdpa"
    eager = "eager"
    flash_attention_2 = "flash_attention_2"


MODEL_FAMILIES = tuple(family.value for family in ModelFamily)


@dataclass
class LoraConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    # no adapters in the vision tower (InternVL's vision attention also has q/k/v_proj)
    exclude_vision: bool = True


@dataclass
class ModelConfig:
    name: str = MISSING
    family: ModelFamily = MISSING
    # Hub id or local directory. For tiny models: the directory the builder writes to (cached).
    path: str = MISSING
    # Name of an offline builder in grit_exp.models.tiny (e.g. "tiny_qwen2_5_vl"); null for real checkpoints.
    tiny_builder: str | None = None
    dtype: Dtype = Dtype.float32  # bf16 autocast on GPU is a trainer setting
    attn_implementation: AttnImplementation = AttnImplementation.sdpa
    gradient_checkpointing: bool = False
    # Qwen2.5-VL image geometry (pixels of the resized input, multiples of 28)
    min_pixels: int = 3136
    max_pixels: int = 256 * 28 * 28
    # InternVL tiling
    tile_size: int = 448
    max_tiles: int = 2
    use_thumbnail: bool = True
    max_prompt_length: int = 750
    freeze_vision: bool = False
    freeze_projector: bool = False
    freeze_llm: bool = False
    lora: LoraConfig = field(default_factory=LoraConfig)


def check_model(model: Any) -> None:
    """ConfigError naming the model.* key that makes no sense."""
    if model.min_pixels > model.max_pixels:
        raise ConfigError(f"model.min_pixels={model.min_pixels} exceeds model.max_pixels={model.max_pixels}")
