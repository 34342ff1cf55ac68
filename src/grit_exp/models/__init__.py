"""Model adapters (one per family) and offline tiny-model builders.

`build_adapter(model_cfg, seed)` checks `model.path` (`grit_exp.config.model.check_model_path`: a
wrong path is one ConfigError line, before anything loads), resolves the checkpoint (building a tiny
model first when the config names a tiny builder and the path is the builder's own directory in the
toolkit's cache) and returns the family's adapter; the model itself is loaded by
`adapter.load_model(device)`, so config validation and data checks can run before any weights load.
"""

from __future__ import annotations

from typing import Any

from grit_exp.models.base import ModelAdapter, PromptBatch

ADAPTERS = {"qwen2_5_vl": "grit_exp.models.qwen:QwenAdapter", "internvl": "grit_exp.models.internvl:InternVLAdapter"}


def adapter_class(family: str) -> type[ModelAdapter]:
    if family not in ADAPTERS:
        raise ValueError(f"model.family={family!r} is unknown; valid: {', '.join(ADAPTERS)}")
    import importlib

    module, name = ADAPTERS[family].split(":")
    return getattr(importlib.import_module(module), name)


def build_adapter(model_cfg: Any, seed: int = 0, cache_dir: str | None = None) -> ModelAdapter:
    """The adapter of `model_cfg` (the config's `model`); `cache_dir`: the config's `paths.cache_dir`, where
    tiny models are built (None: the toolkit's default cache, `config.model.default_cache_dir`)."""
    from grit_exp.config.model import check_model_path

    path = str(model_cfg.path)
    own_build = check_model_path(model_cfg, cache_dir, hub=True) is None
    if model_cfg.tiny_builder and own_build:
        from grit_exp.models.tiny import ensure_tiny_model

        path = str(ensure_tiny_model(model_cfg.tiny_builder, path))
    return adapter_class(model_cfg.family)(model_cfg, path)


__all__ = ["ModelAdapter", "PromptBatch", "adapter_class", "build_adapter"]
