"""One GRPO step at real width, grit-exp vs TRL's GRPOTrainer, on identical work, in fresh processes.

The side-by-side bench of `bench_grpo_vs_trl.py` (same workers, same per-completion seeds, same reward
terms, same loss settings: beta 0.01 with a reference model, the sequence-mean loss, fp32, AdamW, clip
1.0) on `grpo_setup.use_real_width()`'s work: the real-width Qwen2.5-VL-3B (`model=real_width_qwen2_5_vl`:
hidden 2048, the 151,936-token vocabulary, 2 text layers, 2 vision blocks, 0.54 B parameters, random
weights, so every completion runs to the token limit), full fine-tuning, 2 prompts x G=4, 16 new tokens,
2 micro-batches of 4, 1 process per side. Each side runs in its own process (order A B B A ... over
`--rounds`): `--warmup` steps, then `--steps` timed steps. Reported per side: median seconds per step,
the phase breakdown and the process's peak RSS (fp32 weights, gradients, AdamW state and the reference
copy: ~11 GB on either side). Results: results/real_width_vs_trl.json.

Run: `python benchmarks/bench_real_width_vs_trl.py [--rounds 1 --warmup 1 --steps 2]` (~10 min on 2 cores).
Left out: LoRA (`bench_grpo_vs_trl.py`'s workers train every weight), several processes, GPUs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_grpo_vs_trl as pair  # noqa: E402
import grpo_setup  # noqa: E402

log = logging.getLogger("bench")
RESULTS = Path(__file__).parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="ABBA rounds: each side runs in this many processes")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per process")
    parser.add_argument("--worker", choices=pair.SIDES)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    grpo_setup.use_real_width()
    if args.worker:
        pair.worker(args.worker, args.warmup + args.steps, args.out)
        return 0
    grpo_setup.prepare(grpo_setup.compose_cfg())  # builds the real-width model once, before any timing
    runs = []
    load = [os.getloadavg()[0]]
    env = {**os.environ, "BENCH_THREADS": os.environ.get("BENCH_THREADS", "2")}
    with tempfile.TemporaryDirectory() as tmp:
        for index, side in enumerate(pair.abba(args.rounds)):
            out = Path(tmp) / f"{index}_{side}.json"
            command = [sys.executable, __file__, "--worker", side, "--warmup", str(args.warmup), "--steps",
                       str(args.steps), "--out", str(out)]
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            if done.returncode != 0:
                log.error("%s worker failed:\n%s", side, done.stderr[-4000:])
                return 1
            runs.append({**json.loads(out.read_text()), "side": side})
            load.append(os.getloadavg()[0])
            log.info("%s run %d: median %.1f s/step, peak RSS %.0f MB", side, index,
                     statistics.median(r["step_s"] for r in runs[-1]["records"][args.warmup:]), runs[-1]["peak_rss_mb"])
    result = pair.summarize(runs, args.warmup)
    result["work"] = {"model": "real_width_qwen2_5_vl (0.54 B, random weights)", "fine_tuning": "full",
                      "prompts_per_step": grpo_setup.PROMPTS_PER_STEP, "num_generations": grpo_setup.NUM_GENERATIONS,
                      "max_new_tokens": grpo_setup.MAX_NEW_TOKENS, "micro_batch": grpo_setup.MICRO_BATCH}
    result["conditions"] = {"load_average": [round(x, 2) for x in load], "cpu_cores": os.cpu_count(),
                            "torch_threads": runs[0]["threads"], "order": pair.abba(args.rounds),
                            "warmup_steps": args.warmup, "timed_steps_per_process": args.steps}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "real_width_vs_trl.json").write_text(json.dumps(result, indent=2) + "\n")
    grit, trl = result["grit"], result["trl"]
    log.info("real width: grit %.1f s/step, peak RSS %.0f MB; TRL %.1f s/step, peak RSS %.0f MB: %.2fx the throughput, "
             "%.2fx the memory; identical completions %.0f%%", grit["s_per_step"], grit["peak_rss_mb"],
             trl["s_per_step"], trl["peak_rss_mb"], result["ratio"], grit["peak_rss_mb"] / trl["peak_rss_mb"],
             100 * result["identical_completions"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
