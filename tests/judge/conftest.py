"""Fixtures of the judge tests: a started fake judge server and judges pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from grit_exp.api_keys import SecretStr
from grit_exp.judge.openai_judge import OpenAIJudge
from grit_exp.testing.fake_judge_server import FakeJudgeServer

FAST_RETRY = {"timeout_s": 2.0, "max_retries": 3}


@pytest.fixture
def fake_server() -> Iterator[FakeJudgeServer]:
    with FakeJudgeServer() as server:
        yield server


@pytest.fixture
def make_judge(fake_server: FakeJudgeServer) -> Iterator[Callable[..., OpenAIJudge]]:
    """An OpenAIJudge on the fake server with fast retries; keyword arguments override. Closed after."""
    made: list[OpenAIJudge] = []

    def make(**overrides: Any) -> OpenAIJudge:
        settings: dict[str, Any] = {
            "model": "fake-judge",
            "api_key": SecretStr("test-key"),
            "base_url": fake_server.base_url,
        }
        settings.update(FAST_RETRY)
        settings.update(overrides)
        made.append(OpenAIJudge(**settings))
        return made[-1]

    yield make
    for judge in made:
        judge.close()
