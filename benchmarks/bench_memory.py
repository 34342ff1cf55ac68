"""Resident memory over a 200-step tiny GRPO run: it must stay flat after warm-up.

Runs the real training loop (`run_training`: engine, rollout, rewards, update, metrics log) on the
tiny Qwen2.5-VL with small steps (2 prompts x G=2, 32 new tokens) and reads the process's RSS
(/proc/self/status) after every step. Reports RSS after the warm-up (step 20), at the end, the
growth between them and the least-squares slope over steps 20..200 in MB per 100 steps.
Results in results/memory.json; exits 1 if RSS grew by more than --max-growth-mb after warm-up.

Run: `python benchmarks/bench_memory.py [--steps 200]`.
Left out: evaluation and checkpoint cadence (both off until the last step), GPU memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grpo_setup  # noqa: E402

log = logging.getLogger("bench")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stdout)
    log.setLevel(logging.INFO)
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    from grit_exp.training import run

    samples: list[tuple[int, float]] = []
    original = run.grpo_step

    def measured_step(modules, rows, step, first_prompt_index):
        metrics = original(modules, rows, step, first_prompt_index)
        samples.append((step, rss_mb()))
        return metrics

    run.grpo_step = measured_step
    cfg = grpo_setup.compose_cfg(
        f"trainer.max_steps={args.steps}", "trainer.prompts_per_step=2", "algorithm.num_generations=2",
        "trainer.micro_batch_size=4", "rollout.max_new_tokens=32", "trainer.warm_start_sft_steps=0",
        "trainer.eval_on_start=false", f"trainer.eval_every={args.steps}", f"trainer.save_every={args.steps}",
        "dataset.synthetic.num_val=8",
    )
    with tempfile.TemporaryDirectory() as tmp:
        run.run_training(cfg, run_dir=Path(tmp) / "run")
    steps = [s for s, _ in samples if s >= args.warmup]
    values = [v for s, v in samples if s >= args.warmup]
    result = {
        "steps": len(samples),
        "rss_after_warmup_mb": values[0],
        "rss_end_mb": values[-1],
        "rss_max_mb": max(v for _, v in samples),
        "growth_after_warmup_mb": values[-1] - values[0],
        "slope_mb_per_100_steps": 100 * slope(steps, values),
        "warmup_steps": args.warmup,
        "rss_every_20_steps": [round(v, 1) for s, v in samples if s % 20 == 0],
    }
    result["flat"] = abs(result["growth_after_warmup_mb"]) <= args.max_growth_mb
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "memory.json").write_text(json.dumps(result, indent=2) + "\n")
    log.info("RSS %.0f MB after step %d, %.0f MB at step %d (growth %.1f MB, slope %.2f MB/100 steps)",
             result["rss_after_warmup_mb"], args.warmup, result["rss_end_mb"], len(samples),
             result["growth_after_warmup_mb"], result["slope_mb_per_100_steps"])
    return 0 if result["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
