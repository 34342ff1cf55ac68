"""rollout=vllm as configuration: where it is valid, its checks, and that choosing a rollout imports no vLLM.

Runs in the main venv (no vLLM there); the engine itself is tested in test_vllm_rollout.py (vLLM venv).
"""

from __future__ import annotations

import sys

import pytest

from grit_exp.config import validate_groups, validate_train
from grit_exp.errors import ConfigError
from grit_exp.rollout.factory import build_rollout
from grit_exp.rollout.hf import HFRollout
from tests.helpers.configs import compose_config


def test_training_takes_rollout_vllm_with_the_hf_sampling_settings():
    vllm, hf = compose_config("train", "rollout=vllm"), compose_config("train")
    validate_train(vllm)
    assert vllm.rollout.kind == "vllm" and vllm.rollout.vllm.sleep and vllm.rollout.vllm.kv_cache_memory_bytes is None
    for key in ("temperature", "top_k", "top_p", "max_new_tokens", "stop_strings"):
        assert getattr(vllm.rollout, key) == getattr(hf.rollout, key), key


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=tiny_internvl"], "rollout=vllm supports model.family='qwen2_5_vl'"),
    (["rollout.vllm.gpu_memory_utilization=0"], r"rollout.vllm.gpu_memory_utilization=0.0 must be in \(0, 1\]"),
    (["rollout.vllm.kv_cache_memory_bytes=0"], "rollout.vllm.kv_cache_memory_bytes=0 must be >= 1"),
])
def test_bad_vllm_settings_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_train(compose_config("train", "rollout=vllm", *overrides))


def test_evaluation_generates_with_hf_only():
    cfg = compose_config("eval", "rollout.kind=vllm")
    with pytest.raises(ConfigError, match="rollout.kind='vllm' is not valid; choose one of 'hf', 'replay'"):
        validate_groups(cfg)


def test_the_factory_builds_the_named_rollout_without_importing_vllm(tiny_model_paths, monkeypatch):
    from grit_exp.models import build_adapter
    from grit_exp.rollout.vllm import VLLMRollout

    cfg = compose_config("train", "rollout=vllm")
    adapter = build_adapter(cfg.model)
    monkeypatch.setitem(sys.modules, "vllm", None)  # any `import vllm` from here on fails
    assert isinstance(build_rollout(adapter, compose_config("train").rollout), HFRollout)
    rollout = build_rollout(adapter, cfg.rollout, seed=cfg.seed)
    assert isinstance(rollout, VLLMRollout) and rollout.settings(False) == HFRollout(adapter, cfg.rollout).settings(False)
    replay = compose_config("eval", "rollout=replay", "rollout.path=x.jsonl").rollout
    with pytest.raises(ConfigError, match="rollout.kind='replay' cannot train"):
        build_rollout(adapter, replay)


def test_on_cpu_the_kv_cache_size_is_required_before_vllm_loads(tiny_model_paths, monkeypatch):
    import torch

    from grit_exp.models import build_adapter
    from grit_exp.rollout.vllm import VLLMRollout

    if torch.cuda.is_available():
        pytest.skip("the KV-cache size is required on CPU only")
    cfg = compose_config("train", "rollout=vllm")
    rollout = VLLMRollout(build_adapter(cfg.model), cfg.rollout)
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ConfigError, match="rollout.vllm.kv_cache_memory_bytes is required on CPU"):
        rollout.llm  # noqa: B018
