"""The `model` group's schema (conf/model/*.yaml) and its checks.

`family`, `dtype` and `attn_implementation` are enums: OmegaConf refuses any other value when Hydra
composes the config. `check_model_path` refuses a `model.path` that cannot be loaded, in one line,
before anything loads: a folder that does not exist or holds no model (config.json, weights, the
family's model_type), a tiny model group pointed anywhere but its own build directory in the
toolkit's cache (`${paths.cache_dir}/models/<builder>`) or an existing model directory, and (where
asked: `hub=True`, from `build_adapter`) a Hugging Face Hub id that is not in the local HF cache while
the hub is offline. An InternVL checkpoint in the remote-code layout (`InternVLChatModel`, `auto_map`: the
hub's OpenGVLab/InternVL3-2B-Instruct, which the paper started from, and the released GRIT InternVL) is
refused with the convert command (`python -m grit_exp.models.convert_internvl`): a local folder by its
config.json (weights or not) at validation; a hub id where the model is about to load (`hub=True`: the
recipes name OpenGVLab/InternVL3-2B-Instruct and must still compose and validate), by name (OpenGVLab's
non-`-hf` InternVL repositories, the released GRIT one), by its config.json in the local HF cache, or
with the hub online by its config.json downloaded alone. Left out: loading anything (grit_exp.models);
an online Qwen hub id is not looked up.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
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


# config.json's model_type of each family's native transformers class (a remote-code InternVL
# checkpoint says "internvl_chat": convert it first, python -m grit_exp.models.convert_internvl)
FAMILY_MODEL_TYPES = {ModelFamily.qwen2_5_vl: "qwen2_5_vl", ModelFamily.internvl: "internvl"}
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
EXPECTED_DIR = "a model directory with config.json and weights (e.g. <run>/checkpoints/step_<N>/model)"
# hub repositories of InternVL that exist only in the remote-code layout (OpenGVLab's native copies end in -hf)
REMOTE_CODE_INTERNVL_HUB = re.compile(r"^(OpenGVLab/InternVL[^/]*|yfan1997/GRIT-[^/]*InternVL[^/]*)$")


def remote_code_marker(config: dict) -> str | None:
    """What marks a config.json as InternVL's remote-code layout (None: it is not)."""
    if config.get("model_type") == "internvl_chat":
        return "model_type 'internvl_chat'"
    if "InternVLChatModel" in (config.get("architectures") or []):
        return "architectures ['InternVLChatModel']"
    if config.get("auto_map"):
        return "auto_map: remote code"
    return None


def remote_code_error(where: str, source: str, what: str, hub: bool) -> ConfigError:
    """The one line that refuses a remote-code InternVL checkpoint (`what` it is), with the commands that convert it."""
    steps = (f"huggingface-cli download {source} --local-dir <download>, then python -m grit_exp.models.convert_internvl "
             "<download> <dir>" if hub else f"python -m grit_exp.models.convert_internvl {source} <dir>")
    return ConfigError(f"{where} {what}, which the native loader cannot read: convert it once, {steps}, "
                       "and give model.path=<dir>")


def _hub_config(repo: str, download: bool) -> dict | None:
    """A hub repository's config.json from the local HF cache, or (download=True) fetched alone; None if absent."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, "config.json")
    path = cached if isinstance(cached, str) else None
    if path is None and download:
        try:
            path = hf_hub_download(repo, "config.json")
        except Exception as err:  # noqa: BLE001  (the hub's many error types: one line naming the key)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ConfigError(f"model.path={repo}: the Hugging Face Hub did not give its config.json ({first})") from None
    if path is None:
        return None
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def default_cache_dir() -> str:
    """`paths.cache_dir` as conf/ defines it, for a model config composed without the `paths` group."""
    return os.environ.get("GRIT_EXP_CACHE") or str(Path.home() / ".cache" / "grit_exp")


def tiny_build_dir(builder: str, cache_dir: str | os.PathLike) -> Path:
    """The only directory a tiny builder writes into: `${paths.cache_dir}/models/<builder>`."""
    return Path(cache_dir).expanduser() / "models" / builder


def looks_like_hub_id(text: str) -> bool:
    """`org/name` as the hub spells repository ids (a relative path of two parts reads the same)."""
    if Path(text).is_absolute() or text.startswith(("~", ".")) or text.count("/") != 1:
        return False
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as huggingface_hub and transformers read it."""
    from huggingface_hub import constants

    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return constants.is_offline_mode() or any(f.upper() in ("1", "ON", "YES", "TRUE") for f in flags)


def check_model_dir(where: str, directory: Path, family: str, weights: bool = True) -> None:
    """ConfigError unless `directory` is a model directory of `family` (config.json, weights)."""
    if not (directory / "config.json").is_file():
        raise ConfigError(f"{where}: not a model directory (no config.json); expected {EXPECTED_DIR}")
    try:
        config = json.loads((directory / "config.json").read_text())
        model_type = config.get("model_type")
    except (OSError, ValueError, AttributeError) as err:
        raise ConfigError(f"{where}: config.json is not readable JSON ({err})") from None
    marker = remote_code_marker(config) if ModelFamily(family) == ModelFamily.internvl else None
    if marker:  # before the weights: a download of config.json alone is refused the same way
        what = f"holds a {model_type!r} model in InternVL's remote-code layout ({marker})"
        raise remote_code_error(where, str(directory), what, hub=False)
    if weights and not any((directory / name).is_file() for name in WEIGHT_FILES):
        raise ConfigError(f"{where}: not a complete model directory (no weights: {' / '.join(WEIGHT_FILES)})")
    expected = FAMILY_MODEL_TYPES[ModelFamily(family)]
    if model_type != expected:
        hint = " (a remote-code InternVL checkpoint: convert it, python -m grit_exp.models.convert_internvl)" \
            if model_type == "internvl_chat" else ""
        raise ConfigError(
            f"{where} holds a {model_type!r} model, but model.family={family} loads {expected!r} models{hint}; "
            "choose the model group of that family"
        )


def check_model_path(model: Any, cache_dir: str | os.PathLike | None = None, *, hub: bool = False) -> Path | None:
    """ConfigError naming `model.path` when it cannot be loaded; nothing is loaded or written.

    With a tiny model group: None when `model.path` is the builder's own directory in the toolkit's
    cache (built there on first use), else the path, which must be an existing model directory of the
    family (e.g. a trained checkpoint). Otherwise: the path of a local model directory, or None for a
    hub id (`org/name`); with `hub=True` and the hub offline, a hub id must be in the local HF cache.
    """
    raw = str(model.path)
    where = f"model.path={raw}"
    local = Path(raw).expanduser()
    if model.tiny_builder:
        own = tiny_build_dir(model.tiny_builder, cache_dir or default_cache_dir())
        if local.absolute() == own.absolute():
            return None
        if not local.exists():
            what = "looks like a Hugging Face Hub id" if looks_like_hub_id(raw) else "does not exist"
            raise ConfigError(
                f"{where} {what}, and the model group (model.tiny_builder={model.tiny_builder}) builds its random "
                f"tiny model only into the toolkit's cache ({own}): give {EXPECTED_DIR}, or choose the checkpoint's "
                f"model group too, e.g. model=qwen2_5_vl_3b model.path={raw}"
            )
    elif not local.exists() and looks_like_hub_id(raw):
        if hub and ModelFamily(str(model.family)) == ModelFamily.internvl:
            if REMOTE_CODE_INTERNVL_HUB.match(raw) and not raw.lower().endswith("-hf"):
                raise remote_code_error(where, raw, "names an InternVL repository that the Hugging Face Hub has only "
                                        "in the remote-code layout", hub=True)
            config = _hub_config(raw, download=not hub_offline())
            marker = remote_code_marker(config) if config is not None else None
            if marker:
                raise remote_code_error(where, raw, f"is an InternVL repository in the remote-code layout ({marker})",
                                        hub=True)
        if hub and hub_offline():
            from huggingface_hub import try_to_load_from_cache

            if not isinstance(try_to_load_from_cache(raw, "config.json"), str):
                raise ConfigError(
                    f"{where} looks like a Hugging Face Hub id, but it is not in the local HF cache and the hub is "
                    f"offline (HF_HUB_OFFLINE=1); download it first, or give {EXPECTED_DIR}"
                )
        return None
    if not local.exists():
        raise ConfigError(f"{where}: no such directory; expected {EXPECTED_DIR}, or a Hugging Face Hub id (org/name)")
    if not local.is_dir():
        raise ConfigError(f"{where}: is a file, not a model directory; expected {EXPECTED_DIR}")
    check_model_dir(where, local, str(model.family))
    return local


def check_config_model_path(cfg: Any, *, training: bool) -> None:
    """The entry points' check of `model.path` on a typed config (no hub lookup: `build_adapter` does
    that), skipped where no model loads (rollout=replay outside training)."""
    if cfg.rollout.kind == "replay" and not training:
        return
    check_model_path(cfg.model, cfg.paths.cache_dir)
