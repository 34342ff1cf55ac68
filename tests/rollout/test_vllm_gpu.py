"""rollout=vllm on a GPU (issue #18): sleep level 2 between rollouts gives the memory back and the next
rollout (empty cache, wake, push, generate) decodes exactly as before; the engine's context is the
prompt limit + the completion length. Needs CUDA and vLLM; skipped elsewhere (never run on this
project's CPU machines: the order of calls is tested on CPU in test_vllm_engine_args.py).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
pytest.importorskip("vllm", reason="vLLM is not installed here")

from grit_exp.data.prompts import build_user_text  # noqa: E402
from grit_exp.data.reader import load_dataset_splits  # noqa: E402
from grit_exp.models import build_adapter  # noqa: E402
from grit_exp.rollout.vllm import VLLMRollout  # noqa: E402
from tests.helpers.configs import compose_config  # noqa: E402


def test_sleep_level_2_frees_the_gpu_and_the_next_rollout_decodes_the_same(grit_cache, tiny_model_paths) -> None:
    cfg = compose_config("train", "rollout=vllm", "model=tiny_qwen2_5_vl", "dataset.synthetic.num_train=8",
                         "dataset.synthetic.num_val=2", "rollout.max_new_tokens=16", "rollout.vllm.gpu_memory_utilization=0.2")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    policy = adapter.load_model("cuda", dtype="float32")
    rollout = VLLMRollout(adapter, cfg.rollout)
    assert rollout.sleep_level == 2
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:4]]
    try:
        first = rollout.generate(policy, rows[:4], texts, greedy=True)
        assert rollout.llm.llm_engine.vllm_config.model_config.max_model_len == cfg.model.max_prompt_length + 16
        assert rollout.sleeping
        free_asleep = torch.cuda.mem_get_info()[0]
        again = rollout.generate(policy, rows[:4], texts, greedy=True)
        assert torch.equal(first.completion_ids, again.completion_ids)
        assert torch.allclose(first.sampler_logprobs, again.sampler_logprobs, atol=1e-5)
        rollout.llm.wake_up(tags=["kv_cache"])  # what sleep released: at least the KV cache
        rollout.sleeping = False
        assert torch.cuda.mem_get_info()[0] < free_asleep
    finally:
        rollout.close()
