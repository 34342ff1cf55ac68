"""rollout=vllm under ZeRO-3 with every tensor sharded, and truncated importance sampling, end to end (#18).

`python -m grit_exp.train rollout=vllm algorithm.tis.mode=token_truncate` on one process and on two
processes under DeepSpeed ZeRO-3 with persistence threshold 0 (every parameter sharded, as a real model's
are: the push into each process's vLLM engine gathers one module at a time, `rollout/vllm_weights.py`).
The two runs train the same (losses, rewards, importance weights, final weights), so the sharded push
gave every engine the whole updated weights; the importance weights are close to 1 (vLLM's and the
trainer's float32 kernels differ by ~1e-4 nats, top-k off) and recorded per step. The reward is the test-only
spread term (mean token id, tests/training/spread_term.py) so that every group has an advantage
without a warm start.

Runs in the vLLM venv (`make test-vllm`); elsewhere vllm is not importable and the module skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: `make test-vllm` runs these in .venv-vllm")

from safetensors.torch import load_file  # noqa: E402

from tests.helpers.torchrun import ROOT, launch  # noqa: E402

pytestmark = pytest.mark.slow

TERM = "test_spread_on_dataset"
RUN = [
    "rollout=vllm", "rollout.vllm.kv_cache_memory_bytes=67108864", "rollout.vllm.enforce_eager=true",
    "algorithm.tis.mode=token_truncate", "algorithm.tis.clip_max=2.0",
    "dataset.synthetic.num_train=16", "dataset.synthetic.num_val=2", "trainer.max_steps=2", "trainer.save_every=2",
    "trainer.prompts_per_step=4", "algorithm.num_generations=4", "trainer.micro_batch_size=4",
    "trainer.warm_start_sft_steps=0", "trainer.eval_on_start=false", "trainer.eval_every=100", "eval.sampled_k=0",
    "trainer.learning_rate=1e-3", "rollout.max_new_tokens=12", "seed=3",
    # no top-k: the sampler's log-probs are then of the distribution the trainer scores (with top-k 50 they are
    # renormalised over 50 tokens, and this random model's nearly flat distribution gives weights near 0.1)
    "rollout.top_k=0",
    f"+reward.weights.{TERM}=1.0", "reward.weights.format=0", "reward.weights.count=0",
    "reward.weights.judge_accuracy=0", "reward.weights.bleu1=0", f"+reward.options.{TERM}.dataset='*'",
]


def run(processes: int, run_dir: Path, cache: Path, *extra: str) -> tuple[list[dict], dict]:
    code, out = launch(processes, cache, [*RUN, *extra, f"hydra.run.dir={run_dir}"], timeout=900)
    assert code == 0, out[-5000:]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    weights = {}
    for file in sorted((run_dir / "checkpoints" / "step_2" / "model").glob("*.safetensors")):
        weights.update(load_file(str(file)))
    return [r for r in records if "train/loss" in r], weights


def test_sharded_zero3_push_and_tis_train_like_one_process(tmp_path, grit_cache, tiny_model_paths):
    config = json.loads((ROOT / "launchers" / "deepspeed" / "zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "zero3.json").write_text(json.dumps(config))
    one, w1 = run(1, tmp_path / "one", grit_cache, "cluster=local")
    zero3, w3 = run(2, tmp_path / "zero3", grit_cache, "cluster=node8_zero3",
                    f"cluster.deepspeed_config={tmp_path / 'zero3.json'}")
    assert [m["step"] for m in one] == [1, 2] == [m["step"] for m in zero3]
    for a, b in zip(one, zero3, strict=True):
        assert a["train/advantage_abs"] > 0, "every step updates"
        assert 0.9 < a["train/tis_weight_mean"] < 1.1 and 0 <= a["train/tis_clipped_fraction"] < 0.05, a
        for key in ("train/loss", "train/reward", "train/tis_weight_mean", "train/completion_tokens"):
            assert abs(a[key] - b[key]) <= 1e-5, (a["step"], key, a[key], b[key])
    assert w1.keys() == w3.keys()
    # within a tenth of one step's size (lr 1e-3): 1e-5 held with the foreach AdamW, 6.1e-5 was measured after
    # the fused AdamW (#18) while the step metrics above still agree to 1e-5; Adam's first steps turn last-bit
    # gradient differences of near-zero gradients into up to lr. Cause of the larger gap not isolated (the
    # fused kernel alone gives the same bits on flat and per-tensor layouts).
    assert max(float((w1[k].float() - w3[k].float()).abs().max()) for k in w1) <= 1e-4
