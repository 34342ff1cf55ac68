"""Fixtures of the evaluation tests: composing conf/eval.yaml, the hand-worked replay fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from eval_replay_fixture import write_fixture
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from grit_exp.hydra_app import CONF_DIR


@pytest.fixture
def compose_eval(grit_cache) -> Callable[..., DictConfig]:
    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="eval", overrides=list(overrides))

    return make


@pytest.fixture
def replay_file(tmp_path) -> Path:
    return write_fixture(tmp_path / "replay")

