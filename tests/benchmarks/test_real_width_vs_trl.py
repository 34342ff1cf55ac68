"""benchmarks/grpo_setup.py's real-width switch (bench_real_width_vs_trl.py): the tiny bench's work is unchanged,
and the real-width work composes the paper's loss settings on the real-width model without a warm start."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def fresh_grpo_setup():
    """A private copy of the module (use_real_width() changes module globals)."""
    spec = importlib.util.spec_from_file_location("grpo_setup_copy", BENCHMARKS / "grpo_setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_tiny_work_is_unchanged_and_the_real_width_work_composes() -> None:
    tiny = fresh_grpo_setup()
    assert tiny.bench_overrides() == [
        "trainer.prompts_per_step=8", "algorithm.num_generations=4", "rollout.max_new_tokens=128",
        "trainer.micro_batch_size=16", "algorithm.beta=0.01", "algorithm.loss_aggregation=seq_mean_token_mean",
        "trainer.mixed_precision=no", "trainer.warm_start_sft_steps=120", "judge=rules", "cluster=local"]
    real = fresh_grpo_setup()
    real.use_real_width()
    cfg = real.compose_cfg()
    assert cfg.model.name == "real_width_qwen2_5_vl" and cfg.model.dtype == "float32"
    assert (cfg.trainer.prompts_per_step, cfg.trainer.micro_batch_size, cfg.rollout.max_new_tokens) == (2, 4, 16)
    assert cfg.trainer.warm_start_sft_steps == 0 and cfg.algorithm.beta == 0.01
    assert len(real.step_seeds(0, 1)) == 8 and len(real.step_rows(list(range(100)), 2)) == 2
