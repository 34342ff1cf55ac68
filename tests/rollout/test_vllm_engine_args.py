"""rollout=vllm's engine arguments and its sleep / wake order, on CPU without vLLM (issue #18).

- `max_model_len` is the longest sequence a rollout makes (`model.max_prompt_length` +
  `rollout.max_new_tokens`) unless set, never left to vLLM (which sizes for the checkpoint's 128k context).
- With sleep on (a GPU), the engine sleeps at level 2 after each rollout, and PyTorch's cached memory is
  freed before each wake-up: empty cache, wake weights, push, empty cache, wake KV cache, generate, sleep.
  The engine here is a recording double (vLLM's sleep needs CUDA); `test_vllm_gpu.py` runs the real one.
"""

from __future__ import annotations

import sys

import pytest

from grit_exp.models import build_adapter
from grit_exp.rollout import vllm as vllm_rollout
from grit_exp.rollout.vllm import VLLMRollout
from tests.helpers.configs import compose_config


@pytest.fixture()
def rollout(tiny_model_paths, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # nothing here may import vLLM

    def make(*overrides: str) -> VLLMRollout:
        cfg = compose_config("train", "rollout=vllm", "model=tiny_qwen2_5_vl", *overrides)
        return VLLMRollout(build_adapter(cfg.model), cfg.rollout)

    return make


def test_the_context_is_the_prompt_limit_plus_the_completion(rollout) -> None:
    args = rollout("model.max_prompt_length=300", "rollout.max_new_tokens=200").engine_args("/m")
    assert args["max_model_len"] == 500
    assert rollout("rollout.vllm.max_model_len=4096").engine_args("/m")["max_model_len"] == 4096
    real = compose_config("train", "rollout=vllm", "model=qwen2_5_vl_7b")  # the paper's lengths: 750 + 1000
    assert vllm_rollout.engine_max_model_len(real.rollout, real.model) == 1750


def test_sleep_needs_cuda_and_is_level_2(rollout, monkeypatch) -> None:
    monkeypatch.setattr(vllm_rollout.torch.cuda, "is_available", lambda: False)
    assert rollout().sleep_level is None and rollout().engine_args("/m")["enable_sleep_mode"] is False
    monkeypatch.setattr(vllm_rollout.torch.cuda, "is_available", lambda: True)
    on = rollout("rollout.vllm.kv_cache_memory_bytes=67108864")
    assert on.sleep_level == 2 and on.engine_args("/m")["enable_sleep_mode"] is True
    assert rollout("rollout.vllm.sleep=false").sleep_level is None


class RecordingEngine:
    """Records the calls the rollout makes on `vllm.LLM` (and consumes the pushed weights as vLLM does)."""

    def __init__(self, calls: list[str]):
        self.calls = calls
        self.llm_engine = self

    def wake_up(self, tags):
        self.calls.append(f"wake_up:{','.join(tags)}")

    def sleep(self, level):
        self.calls.append(f"sleep:{level}")

    def collective_rpc(self, method, kwargs):
        self.calls.append(f"{method}:{sum(1 for _ in kwargs['weights_iterator'])}")

    def reset_prefix_cache(self):
        pass

    def reset_encoder_cache(self):
        pass

    def generate(self, requests, params, use_tqdm):
        self.calls.append("generate")
        return []


def test_each_rollout_frees_the_cache_before_each_wake_up(rollout, monkeypatch) -> None:
    import torch

    calls: list[str] = []
    monkeypatch.setattr(vllm_rollout, "free_cached_memory", lambda: calls.append("empty_cache"))
    r = rollout()
    r.sleep_level = 2  # as on a GPU
    model = torch.nn.Linear(2, 2)
    engine = RecordingEngine(calls)
    r._push_and_generate(engine, model, [], [])
    assert calls == ["reload_weights:2", "generate", "sleep:2"]  # built awake: the first rollout only sleeps after
    calls.clear()
    r._push_and_generate(engine, model, [], [])
    assert calls == ["empty_cache", "wake_up:weights", "reload_weights:2", "empty_cache", "wake_up:kv_cache",
                     "generate", "sleep:2"]
    r.sleep_level = None  # CPU: never sleeps
    r.sleeping = False
    calls.clear()
    r._push_and_generate(engine, model, [], [])
    assert calls == ["reload_weights:2", "generate"]
