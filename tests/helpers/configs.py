"""Compose an entry's config (`train`, `eval`, `app`) from the repository's conf/ with overrides, and
convert it once to its typed schema (`grit_exp.config.typed.to_typed`), as the entry points do.

Left out: validation (each test calls the check it is about) and running anything.
"""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from grit_exp.config import EvalConfig, TrainConfig
from grit_exp.config.typed import to_typed
from grit_exp.hydra_app import CONF_DIR


def schema_of(config_name: str) -> type:
    """The dataclass an entry's config converts to (conf/<config_name>.yaml)."""
    if config_name == "app":
        from grit_exp.grounded_answer import AppConfig  # registers app_schema; imports the image code

        return AppConfig
    return {"train": TrainConfig, "eval": EvalConfig}[config_name]


def compose_dictconfig(config_name: str, *overrides: str, hydra: bool = False) -> DictConfig:
    """conf/<config_name>.yaml composed with `overrides`, as Hydra hands it to an entry point (before the
    conversion); `hydra=True` keeps the `hydra` node (launcher, sweeper)."""
    schema_of(config_name)  # the app's schema is registered by the module that defines it
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra)


def compose_config(config_name: str, *overrides: str, hydra: bool = False) -> Any:
    """conf/<config_name>.yaml composed with `overrides` and converted to its typed schema (TrainConfig,
    EvalConfig, AppConfig); `hydra=True`: the DictConfig with its `hydra` node (launcher, sweeper), unconverted."""
    cfg = compose_dictconfig(config_name, *overrides, hydra=hydra)
    return cfg if hydra else to_typed(cfg, schema_of(config_name))
