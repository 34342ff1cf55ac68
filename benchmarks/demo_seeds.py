"""The CPU demo (`make train`) over seeds and float paths: GRPO's own gain as a distribution.

Runs `python -m grit_exp.train seed=N` for every seed in every float setting, each run in its own run
directory under --root, then reads each run's metrics.jsonl and prints, per setting, one row per seed
(sampled reward and greedy count accuracy at step 0, the warm start, and at the last evaluation) and
the distribution of the change: mean, 95 % t-interval, worst seed, seeds up. The README's seed table is
this script's output (`--markdown`).

Float settings (each run is bit-reproducible; the settings perturb the float path, as another machine
would):
  default  torch as installed picks its kernels (AVX-512 on this project's machines)
  avx2     ATEN_CPU_CAPABILITY=avx2: torch's own vectorised kernels take the AVX2 path (a CPU without
           AVX-512); every run's warm start already differs from `default`'s
Runs use one torch thread each (OMP_NUM_THREADS=1), so two can share two cores: on this machine the
thread count changes the warm start and the greedy evaluations by no bit, and (since the fused AdamW) the
sampled reward after 100 steps in the third decimal (`make train`, 2 threads, seed 0: 2.422 vs 2.424). Each setting gets its own cache (`GRIT_EXP_CACHE=<root>/<setting>/cache`): data, the
tiny model and the warm starts are built fresh in it once and reused by the runs of that setting (a
cached warm start gives the same weights as a fresh one). A run whose last evaluation is already in
its metrics.jsonl is read, not run again.

Run: `python benchmarks/demo_seeds.py [--seeds 0-7] [--settings default,avx2] [--jobs 2]
[--root /tmp/demo_seeds] [--markdown] [-- key=value ...]` (overrides after `--` go to every run).
Left out: the untrained level (every seed's is the same), timings (`make train` is timed on its own).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASET = "synth_count"
SETTINGS = {"default": {}, "avx2": {"ATEN_CPU_CAPABILITY": "avx2"}}
# two-sided 95 % quantiles of Student's t, by degrees of freedom (1-30)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]
METRICS = (("reward_sampled", "sampled reward"), ("acc", "greedy count accuracy"))


def parse_seeds(text: str) -> list[int]:
    """'0-7' or '0,3,5' or '0-3,8'."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def first_and_last_eval(run_dir: Path) -> tuple[dict, dict] | None:
    """(step-0 evaluation, last evaluation) of a finished run's metrics.jsonl; None when unfinished."""
    path = run_dir / "metrics.jsonl"
    if not (run_dir / "before_after.txt").exists() or not path.exists():
        return None
    evals = [r for r in map(json.loads, path.read_text().splitlines()) if any(k.startswith("eval/") for k in r)]
    return (evals[0], evals[-1]) if len(evals) >= 2 else None


def run_one(setting: str, seed: int, root: Path, overrides: list[str]) -> Path:
    run_dir = root / setting / f"seed_{seed}"
    if first_and_last_eval(run_dir) is None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GRIT_EXP_CACHE": str(root / setting / "cache"),
               "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled",
               "TOKENIZERS_PARALLELISM": "false", **SETTINGS[setting]}
        run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with open(run_dir.parent / f"seed_{seed}.log", "w") as log:
            subprocess.run([sys.executable, "-m", "grit_exp.train", f"seed={seed}", *overrides,
                            f"hydra.run.dir={run_dir}"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                           check=True)
        print(f"{setting} seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return run_dir


def interval(deltas: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95 % t-interval."""
    mean = statistics.fmean(deltas)
    if len(deltas) < 2:
        return mean, math.nan, math.nan
    half = T975[min(len(deltas) - 1, len(T975)) - 1] * statistics.stdev(deltas) / math.sqrt(len(deltas))
    return mean, mean - half, mean + half


def collect(setting: str, seeds: list[int], root: Path) -> dict:
    """Per seed: step-0 / last values and change of each metric; per metric: the distribution."""
    rows = {}
    for seed in seeds:
        found = first_and_last_eval(root / setting / f"seed_{seed}")
        if found is None:
            continue
        first, last = found
        rows[seed] = {"steps": last["step"] - first["step"]}
        for metric, _ in METRICS:
            key = f"eval/{DATASET}/{metric}"
            rows[seed][metric] = {"step0": first[key], "last": last[key], "change": last[key] - first[key]}
    summary = {}
    for metric, _ in METRICS:
        deltas = [r[metric]["change"] for r in rows.values()]
        if deltas:
            mean, low, high = interval(deltas)
            worst = min(rows, key=lambda s: rows[s][metric]["change"])
            summary[metric] = {"mean": mean, "ci95": [low, high], "worst_seed": worst,
                               "worst": rows[worst][metric]["change"], "up": sum(d > 0 for d in deltas), "n": len(deltas)}
    return {"seeds": rows, "summary": summary}


def markdown(setting: str, result: dict) -> str:
    """The README's table for one float setting: a row per seed, then mean, 95 % interval, worst seed."""
    lines = [f"| seed ({setting}) | sampled reward, step 0 -> last | change | greedy count accuracy, step 0 -> last | change |",
             "|---|---:|---:|---:|---:|"]
    for seed, row in result["seeds"].items():
        cells = [f"{row[m]['step0']:.3f} -> {row[m]['last']:.3f} | {row[m]['change']:+.3f}" for m, _ in METRICS]
        lines.append(f"| {seed} | " + " | ".join(cells) + " |")
    stats = result["summary"]
    if stats:
        lines.append("| **mean** (95 % interval) | | " + " | | ".join(
            f"**{stats[m]['mean']:+.3f}** ({stats[m]['ci95'][0]:+.3f}, {stats[m]['ci95'][1]:+.3f})" for m, _ in METRICS) + " |")
        lines.append("| worst seed; seeds up | | " + " | | ".join(
            f"{stats[m]['worst']:+.3f} (seed {stats[m]['worst_seed']}); {stats[m]['up']} / {stats[m]['n']}" for m, _ in METRICS) + " |")
    return "\n".join(lines)


def main() -> None:
    argv = sys.argv[1:]
    overrides = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-7")
    parser.add_argument("--settings", default="default,avx2")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one torch thread each)")
    parser.add_argument("--root", type=Path, default=Path("/tmp/demo_seeds"))
    parser.add_argument("--collect-only", action="store_true", help="read finished runs, start none")
    parser.add_argument("--markdown", action="store_true", help="print the README's tables")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    seeds, settings = parse_seeds(args.seeds), args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"--settings {','.join(unknown)}: valid are {', '.join(SETTINGS)}")
    if not args.collect_only:
        with ThreadPoolExecutor(args.jobs) as pool:
            for future in [pool.submit(run_one, s, seed, args.root, overrides) for s in settings for seed in seeds]:
                future.result()
    results = {s: collect(s, seeds, args.root) for s in settings}
    if args.out:
        args.out.write_text(json.dumps({"overrides": overrides, "results": results}, indent=2) + "\n")
    if args.markdown:
        print("\n\n".join(markdown(s, results[s]) for s in settings))
    else:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
