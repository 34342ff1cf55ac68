"""Fixtures of the training tests' multi-process runs."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory, grit_cache, tiny_model_paths):
    """`test_dynamic_sampling.torchrun(1, ...)` with these overrides, run once per module (several 2-process
    runs compare with the same one)."""
    from test_dynamic_sampling import torchrun

    runs: dict[tuple, Path] = {}

    def run(*overrides: str, env: dict[str, str] | None = None) -> Path:
        key = (*overrides, *sorted((env or {}).items()))
        if key not in runs:
            runs[key] = torchrun(1, tmp_path_factory.mktemp("one"), grit_cache, "cluster=local", *overrides, env=env)
        return runs[key]

    return run
