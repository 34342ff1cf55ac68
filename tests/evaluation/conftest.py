"""Fixtures of the evaluation tests: composing conf/eval.yaml, the hand-worked replay fixture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from eval_replay_fixture import write_fixture
from omegaconf import DictConfig

from tests.helpers.configs import compose_config


@pytest.fixture
def compose_eval(grit_cache) -> Callable[..., DictConfig]:
    def make(*overrides: str) -> DictConfig:
        return compose_config("eval", *overrides)

    return make


@pytest.fixture
def replay_file(tmp_path) -> Path:
    return write_fixture(tmp_path / "replay")

