"""Shared fixtures: offline environment, tiny models built once per session, generated images."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def grit_cache(tmp_path_factory) -> Path:
    """A cache directory shared by the whole session (tiny models, synthetic data)."""
    path = tmp_path_factory.mktemp("grit_cache")
    os.environ["GRIT_EXP_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_paths(grit_cache) -> dict[str, Path]:
    from grit_exp.models.tiny import ensure_tiny_model

    return {b: ensure_tiny_model(b, grit_cache / "models" / b) for b in ("tiny_qwen2_5_vl", "tiny_internvl")}
