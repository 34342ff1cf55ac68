"""Reward and metric throughput on replayed completions (completions per second), no model loaded.

Writes N (default 100,000) replay lines built from the generated training rows: gold chains in the
tiny Qwen frame, a third of them with a wrong answer, a fifth with jittered boxes, a tenth without
`</answer>` (so every path of the scorers runs). Then, timed separately: reading the replay file
(`read_replay`), the training rewards (`compute_rewards` of `reward=grit_paper` with the rules judge,
in batches of 128 completions as a GRPO step would), and the evaluation metrics (`score_samples`:
grounding IoU, OVD precision, format, judge ACC, then `aggregate`). Results in
results/rewards_throughput.json.

Run: `python benchmarks/bench_rewards.py [--completions 100000]`.
Left out: the LLM judge (`bench_judge.py` measures it), pictures and the HTML report.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grpo_setup  # noqa: E402

log = logging.getLogger("bench")
BATCH = 128
GRID = [1, 8, 8]  # the tiny Qwen's 112 px frame


def replay_lines(rows: list, n: int, seed: int = 0) -> list[dict]:
    from grit_exp.data.gold_chain import format_gold_chain
    from grit_exp.grounding.frames import ImageGeometry

    rng = random.Random(seed)
    lines = []
    for i in range(n):
        row = rows[i % len(rows)]
        geometry = ImageGeometry.for_qwen_grid(row.width, row.height, GRID)
        text = format_gold_chain(row, geometry)
        if i % 3 == 1:
            text = text.replace(f"<answer> {row.answer}", "<answer> 7")
        if i % 5 == 2:
            text = text.replace("[1", f"[{rng.randint(1, 9)}").replace(", 4", f", {rng.randint(1, 9)}")
        if i % 10 == 3:
            text = text.split("<answer>")[0]
        line = {"question": row.question, "answer": row.answer, "image": row.image, "width": row.width,
                "height": row.height, "bboxs": row.bboxs, "dataset": row.dataset, "completion": text,
                "model_family": "qwen2_5_vl", "image_grid_thw": GRID}
        lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--completions", type=int, default=100_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("grit_exp").setLevel(logging.WARNING)

    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.evaluation.aggregate import aggregate
    from grit_exp.evaluation.runner import replay_completer
    from grit_exp.evaluation.samples import score_samples
    from grit_exp.judge import build_judge
    from grit_exp.rewards import RewardContext, compute_rewards
    from grit_exp.rollout.replay import read_replay

    cfg = grpo_setup.compose_cfg("judge.cache_path=null")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    judge = build_judge(cfg.judge)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.jsonl"
        with path.open("w") as f:
            for line in replay_lines(rows, args.completions):
                f.write(json.dumps(line) + "\n")
        started = time.perf_counter()
        items, _ = read_replay(path, image_root="/")
        read_s = time.perf_counter() - started

    started = time.perf_counter()
    totals = []
    for start in range(0, len(items), BATCH):
        batch = items[start : start + BATCH]
        texts = [item.completion for item in batch]
        ctx = RewardContext(prompts=[item.row.question for item in batch], token_ids=None, judge=judge,
                            counting_datasets=list(cfg.reward.counting_datasets))
        totals.extend(compute_rewards(cfg.reward, texts, [item.row for item in batch], ctx).total)
    rewards_s = time.perf_counter() - started

    started = time.perf_counter()
    completed = replay_completer(cfg.prompt)(list(enumerate(items)))
    records = score_samples(completed, cfg.reward, judge)
    metrics = aggregate(records)
    metrics_s = time.perf_counter() - started

    n = len(items)
    result = {
        "completions": n,
        "read_replay_per_s": n / read_s,
        "rewards_per_s": n / rewards_s,
        "metrics_per_s": n / metrics_s,
        "rewards_and_metrics_per_s": n / (rewards_s + metrics_s),
        "mean_reward": sum(totals) / n,
        "datasets": sorted(k for k in metrics if not k.startswith("_")),
        "conditions": {"load_average": os.getloadavg()[0]},
    }
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "rewards_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    log.info("%d completions: read %.0f/s, rewards %.0f/s, metrics %.0f/s (rewards + metrics %.0f/s)", n,
             result["read_replay_per_s"], result["rewards_per_s"], result["metrics_per_s"],
             result["rewards_and_metrics_per_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
