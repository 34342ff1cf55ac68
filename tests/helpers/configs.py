"""Compose an entry's config (`train`, `eval`, `app`) from the repository's conf/ with overrides.

Left out: validation (each test calls the check it is about) and running anything.
"""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from grit_exp.hydra_app import CONF_DIR


def compose_config(config_name: str, *overrides: str, hydra: bool = False) -> DictConfig:
    """conf/<config_name>.yaml composed with `overrides`; `hydra=True` keeps the `hydra` node (launcher, sweeper)."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=hydra)
