"""Shared set-up of the GRPO benchmarks: the config, the warm-start weights, the prompts and seeds.

Both sides of `bench_grpo_vs_trl.py` (and `bench_memory.py`) start from the same cached warm start:
a short SFT of the tiny Qwen2.5-VL on the generated shapes (so that completions have the paper's
format and end at `</answer>`), trained once and saved under the grit_exp cache. Each step takes
the next `prompts_per_step` training rows in order, and completion j of prompt i at step s is
sampled from `completion_seed(seed, s, i, j)` on both sides.

`use_real_width()` switches the work to `bench_real_width_vs_trl.py`'s: the real-width Qwen2.5-VL-3B
(`model=real_width_qwen2_5_vl`, no warm start: its random weights), 2 prompts x G=4, 16 new tokens,
micro-batches of 4 (the paper's), everything else as above.

Left out: the timing and the comparison (the bench scripts do that).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from grit_exp.config import TrainConfig, validate_train
from grit_exp.config.typed import to_typed
from grit_exp.hydra_app import CONF_DIR

log = logging.getLogger("bench")

PROMPTS_PER_STEP = 8
NUM_GENERATIONS = 4
MAX_NEW_TOKENS = 128
MICRO_BATCH = 16
WARM_START_STEPS = 120  # format 1.0 greedy after ~100 steps at batch 32 (measured); cached once
MODEL_OVERRIDES: list[str] = []  # the tiny Qwen2.5-VL (train.yaml's default) unless use_real_width()


def use_real_width() -> None:
    """The real-width work (module docstring); call it before composing the config, in every process."""
    global PROMPTS_PER_STEP, MAX_NEW_TOKENS, MICRO_BATCH, WARM_START_STEPS
    PROMPTS_PER_STEP, MAX_NEW_TOKENS, MICRO_BATCH, WARM_START_STEPS = 2, 16, 4, 0
    MODEL_OVERRIDES[:] = ["model=real_width_qwen2_5_vl", "model.dtype=float32"]


def bench_overrides() -> list[str]:
    """The issue's work: 8 prompts x G=4, 128 new tokens, beta 0.01, sequence-mean loss, 2 micro-batches of 16, fp32."""
    return [
        f"trainer.prompts_per_step={PROMPTS_PER_STEP}",
        f"algorithm.num_generations={NUM_GENERATIONS}",
        f"rollout.max_new_tokens={MAX_NEW_TOKENS}",
        f"trainer.micro_batch_size={MICRO_BATCH}",
        "algorithm.beta=0.01",
        "algorithm.loss_aggregation=seq_mean_token_mean",
        "trainer.mixed_precision=no",
        f"trainer.warm_start_sft_steps={WARM_START_STEPS}",
        "judge=rules",
        "cluster=local",
        *MODEL_OVERRIDES,
    ]


def compose_cfg(*extra: str) -> Any:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_typed(compose(config_name="train", overrides=[*bench_overrides(), *extra]), TrainConfig)
    validate_train(cfg)
    return cfg


def prepare(cfg: Any) -> tuple[Any, list, Path]:
    """(adapter, training rows, warm-start model directory), building and caching what is missing."""
    from grit_exp.algorithm.sft import cached_warm_start
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.models import build_adapter

    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    if cfg.trainer.warm_start_sft_steps == 0:  # the real-width work starts from the random weights
        return adapter, rows, Path(adapter.path)
    start = cached_warm_start(cfg, adapter, rows, Path(cfg.paths.cache_dir).expanduser())
    return adapter, rows, start


def step_rows(rows: list, step: int) -> list:
    """The prompts of `step` (1-based): the next PROMPTS_PER_STEP rows in order."""
    start = ((step - 1) * PROMPTS_PER_STEP) % len(rows)
    return rows[start : start + PROMPTS_PER_STEP]


def step_seeds(seed: int, step: int) -> list[int]:
    from grit_exp.rollout.seeded_sampling import completion_seed

    return [completion_seed(seed, step, i, j) for i in range(PROMPTS_PER_STEP) for j in range(NUM_GENERATIONS)]
