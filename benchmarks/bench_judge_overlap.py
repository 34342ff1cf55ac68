"""Judging during generation vs after it, in GRPO steps against the local fake judge server.

The GRPO benchmark's work (`grpo_setup.py`: warm start, 8 prompts x G=4, up to 128 tokens) with the
`grit_paper` rewards judged by `OpenAIJudge` (concurrency 32, no cache) against the fake server in its
own process (`python -m grit_exp.testing.fake_judge_server`, 50 ms per request). The learning rate is 0, so
every repetition of a step generates the same completions and asks the same questions; each step
runs once judging as rows finish (`rollout/judge_overlap.py`) and once judging after generation,
alternating which goes first. Reports the medians of rollout + reward seconds and of the step.

Run: `python benchmarks/bench_judge_overlap.py [--steps 6]`; results/judge_overlap.json.
Left out: real endpoints (their latency and rate limits decide the gain).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import grpo_setup  # noqa: E402
from bench_judge import server_process  # noqa: E402

log = logging.getLogger("bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32, help="judge.concurrency (requests in flight)")
    parser.add_argument("--out", default="judge_overlap.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for noisy in ("grit_exp", "httpx", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    from grit_exp.algorithm.grpo import grpo_step
    from grit_exp.algorithm.step_modules import StepModules
    from grit_exp.cluster.engine import TrainingEngine
    from grit_exp.judge import build_judge
    from grit_exp.rollout.hf import HFRollout
    from grit_exp.training.run import build_scheduler

    os.environ.setdefault("OPENAI_API_KEY", "bench-key")
    with server_process(args.latency_ms) as server:
        cfg = grpo_setup.compose_cfg("judge=openai", f"judge.base_url={server.base_url}", "judge.model=fake-judge",
                                     "judge.cache_path=null", "trainer.learning_rate=0.0",
                                     f"judge.concurrency={args.concurrency}")
        adapter, rows, start = grpo_setup.prepare(cfg)
        engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=2, micro_batch_size=grpo_setup.MICRO_BATCH)
        policy = adapter.load_model(engine.device, path=str(start), dtype="float32")
        reference = engine.prepare_frozen(adapter.load_model("cpu", path=str(start)))
        optimizer = torch.optim.AdamW(policy.parameters(), lr=0.0)
        policy, optimizer = engine.prepare(policy, optimizer)
        judge = build_judge(cfg.judge)
        modules = StepModules(adapter, policy, reference, HFRollout(adapter, cfg.rollout), judge, optimizer,
                              build_scheduler(optimizer, cfg.trainer), cfg, engine)
        times: dict[str, list[dict]] = {"overlapped": [], "after": []}
        for step in range(0, args.steps + 1):  # step 0: warm-up of both
            order = ("overlapped", "after") if step % 2 == 0 else ("after", "overlapped")
            for mode in order:
                judge.overlap_with_generation = mode == "overlapped"
                server.reset_counters()
                metrics = grpo_step(modules, grpo_setup.step_rows(rows, step + 1), step + 1, first_prompt_index=0)
                if step:
                    times[mode].append({"generate_and_judge_s": metrics["time/rollout_s"] + metrics["time/reward_s"],
                                        "step_s": metrics["time/step_s"], "requests": server.requests,
                                        "reward": metrics["train/reward"]})
        judge.close()
        engine.shutdown()
    same = all(a["reward"] == b["reward"] and a["requests"] == b["requests"]
               for a, b in zip(times["overlapped"], times["after"], strict=True))
    result = {mode: {"generate_and_judge_s": statistics.median(r["generate_and_judge_s"] for r in runs),
                     "step_s": statistics.median(r["step_s"] for r in runs),
                     "judge_requests_per_step": statistics.median(r["requests"] for r in runs)}
              for mode, runs in times.items()}
    result["saved_s"] = result["after"]["generate_and_judge_s"] - result["overlapped"]["generate_and_judge_s"]
    result["same_rewards_and_requests"] = same
    result["conditions"] = {"latency_ms": args.latency_ms, "concurrency": args.concurrency, "steps": args.steps, "load_average": os.getloadavg()[0]}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / args.out).write_text(json.dumps(result, indent=2) + "\n")
    log.info("generate + judge: %.3f s judging after generation, %.3f s judging during it (saved %.3f s); "
             "same rewards and requests: %s", result["after"]["generate_and_judge_s"],
             result["overlapped"]["generate_and_judge_s"], result["saved_s"], same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
