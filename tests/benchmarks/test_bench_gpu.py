"""benchmarks/bench_gpu.py: the config it writes is Qwen2.5-VL-3B's size, and its whole path (random
model, ZeRO-2 engine, GRPO steps, figures) runs at tiny size on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import bench_gpu  # noqa: E402


def test_the_written_config_is_qwen2_5_vl_3b(tiny_model_paths):
    from grit_exp.models.processors import load_qwen_processor

    tokenizer = load_qwen_processor(str(tiny_model_paths["tiny_qwen2_5_vl"]), 3136, 12544).tokenizer
    model = bench_gpu.build_policy(tokenizer, tiny=False, device=torch.device("meta"))
    assert sum(p.numel() for p in model.parameters()) == 3_754_622_976  # Qwen2.5-VL-3B-Instruct's count
    assert model.config._attn_implementation == "sdpa"
    one = bench_gpu.update_flops(model, [bench_gpu.CompletionSize(0, 300, 0, 1000)], micro_batch_size=4)
    four = [bench_gpu.CompletionSize(i, 300, 0, 1000) for i in range(4)]  # 4 prompts: nothing shared
    assert bench_gpu.update_flops(model, four, micro_batch_size=4) == pytest.approx(4 * one)
    # ~8 x 3.1e9 LLM parameters x 1300 tokens (policy forward+backward and the reference forward), plus attention
    assert 3.0e13 < one < 4.0e13


@pytest.mark.slow
def test_tiny_run_reports_every_figure(grit_cache, tiny_model_paths, tmp_path):
    out = tmp_path / "gpu_tiny.json"
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache)}
    command = [sys.executable, str(BENCHMARKS / "bench_gpu.py"), "--tiny", "--prompts", "1", "--max-new-tokens", "8",
               "--warmup", "1", "--steps", "1", "--out", str(out)]
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["engine"]["engine"] == "deepspeed" and result["engine"]["zero_stage"] == 2
    assert result["engine"]["mixed_precision"] == "bf16"
    assert result["completions_per_step"] == 4 and len(result["steps"]) == 2
    assert 0 < result["mean_completion_tokens"] <= 8
    assert result["generated_tokens_per_s_per_gpu"] > 0 and result["s_per_step"] > 0
    assert result["update_mfu"] is None and result["peak_gpu_memory_gb"] is None  # no GPU: no made-up figure
    assert all(step["flops"] > 0 for step in result["steps"])
    assert result["easyr1_tokens_per_s_per_gpu"] > 0
    assert all(step["easyr1_tokens"] > step["generated_tokens"] for step in result["steps"])  # prompts, images included


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_without_cuda_the_full_size_run_is_skipped():
    run = subprocess.run([sys.executable, str(BENCHMARKS / "bench_gpu.py")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "no CUDA device here; skipped" in run.stdout
