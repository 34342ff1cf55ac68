"""The training rollout named by `rollout.kind`: HF `generate` (`hf`) or a colocated vLLM engine (`vllm`).

vLLM is imported only when chosen (the optional `vllm` extra). `replay` scores recorded completions
and exists for evaluation only: training needs a live model.
"""

from __future__ import annotations

from typing import Any

from grit_exp.errors import ConfigError
from grit_exp.models.base import ModelAdapter


def build_rollout(adapter: ModelAdapter, rollout_cfg: Any, seed: int = 0) -> Any:
    """An object with `generate(model, rows, user_texts, ...) -> Rollout`, `settings(greedy)` and `close()`."""
    if rollout_cfg.kind == "hf":
        from grit_exp.rollout.hf import HFRollout

        return HFRollout(adapter, rollout_cfg)
    if rollout_cfg.kind == "vllm":
        from grit_exp.rollout.vllm import VLLMRollout

        return VLLMRollout(adapter, rollout_cfg, seed=seed)
    raise ConfigError(f"rollout.kind={str(rollout_cfg.kind)!r} cannot train (it generates nothing); choose 'hf' or 'vllm'")
