"""Collect the benchmark results into results/latest.json and the table in benchmarks/README.md.

Reads what the other bench scripts wrote under results/ (a missing file: that figure is absent,
e.g. gpu.json without CUDA) and writes `latest.json`, one object per benchmark whose keys are the
figures' names (`grpo_step_vs_trl.ratio`, `judge_vs_serial.ratio`, ...), and the section between
the `bench-summary` markers of benchmarks/README.md.

Run: `python benchmarks/bench_report.py` (the last step of `make bench`).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
RESULTS = HERE / "results"
README = HERE / "README.md"
START, END = "<!-- bench-summary:start -->", "<!-- bench-summary:end -->"


def _read(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def collect() -> dict[str, Any]:
    import torch
    import transformers
    import trl

    latest: dict[str, Any] = {
        "measured": datetime.date.today().isoformat(),
        "machine": {"cpu_cores": os.cpu_count(), "platform": platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__},
    }
    grpo = _read("grpo_step_vs_trl.json")
    if grpo:
        g, t = grpo["grit"], grpo["trl"]
        latest["grpo_step_vs_trl"] = {
            "ratio": grpo["ratio"], "target_ratio": 1.5,
            "grit_s_per_step": g["s_per_step"], "trl_s_per_step": t["s_per_step"],
            "grit_completion_tokens_per_s": g["completion_tokens_per_s"],
            "trl_completion_tokens_per_s": t["completion_tokens_per_s"],
            "grit_peak_rss_mb": g["peak_rss_mb"], "trl_peak_rss_mb": t["peak_rss_mb"],
            "grit_phases_s": {k: g[k] for k in ("rollout_s", "reward_s", "update_s", "reference_s") if k in g},
            "trl_phases_s": {k: t[k] for k in ("rollout_s", "reward_s", "update_s")},
            "identical_completions": grpo["identical_completions"], "identical_steps": grpo["identical_steps"],
            "timed_steps_per_side": g["timed_steps"], "conditions": grpo["conditions"],
        }
        if "grit_before" in grpo:
            latest["grpo_step_vs_trl"]["grit_before_s_per_step"] = grpo["grit_before"]["s_per_step"]
    judge = _read("judge_vs_serial.json")
    if judge:
        latest["judge_vs_serial"] = judge
    for name, key in (("judge_overlap.json", "judge_overlap"), ("judge_overlap_c4.json", "judge_overlap_concurrency_4")):
        overlap = _read(name)
        if overlap:
            latest[key] = {"saved_s": overlap["saved_s"],
                           "after_generation_s": overlap["after"]["generate_and_judge_s"],
                           "during_generation_s": overlap["overlapped"]["generate_and_judge_s"],
                           "same_rewards_and_requests": overlap["same_rewards_and_requests"],
                           "conditions": overlap["conditions"]}
    rollout = _read("rollout_variants.json")
    if rollout:
        hf, ours, static = rollout["hf_stop_strings"], rollout["token_ids"], rollout["token_ids_static_cache"]
        in_place = rollout["token_ids_in_place_cache"]
        latest["rollout_stop_criterion"] = {
            "hf_ms_per_decode_step": hf["ms_per_decode_step"], "token_ids_ms_per_decode_step": ours["ms_per_decode_step"],
            "ratio": hf["ms_per_decode_step"] / ours["ms_per_decode_step"],
            "same_tokens": ours["same_tokens_as_first"]}
        latest["rollout_static_cache"] = {
            "ms_per_decode_step": static["ms_per_decode_step"],
            "ratio_vs_dynamic": ours["ms_per_decode_step"] / static["ms_per_decode_step"],
            "same_tokens": static["same_tokens_as_first"], "adopted": False}
        latest["rollout_in_place_cache"] = {
            "ms_per_decode_step": in_place["ms_per_decode_step"],
            "ratio_vs_dynamic": ours["ms_per_decode_step"] / in_place["ms_per_decode_step"],
            "same_tokens": in_place["same_tokens_as_first"], "adopted": True}
        loop = rollout["decode_loop"]
        latest["rollout_decode_loop"] = {
            "s_per_rollout": loop["s_per_rollout"], "generate_s_per_rollout": in_place["s_per_rollout"],
            "ratio_vs_generate": in_place["s_per_rollout"] / loop["s_per_rollout"],
            "same_tokens": loop["same_tokens_as_first"], "adopted": True}
        latest["rollout_now_vs_before"] = {"ratio": hf["s_per_rollout"] / loop["s_per_rollout"],
                                           "before_s_per_rollout": hf["s_per_rollout"],
                                           "now_s_per_rollout": loop["s_per_rollout"]}
    rewards = _read("rewards_throughput.json")
    if rewards:
        latest["rewards_throughput"] = rewards
    memory = _read("memory.json")
    if memory:
        latest["memory"] = memory
    gpu = _read("gpu.json")
    latest["gpu"] = gpu if gpu else {"skipped": "no CUDA device where `make bench` last ran"}
    return latest


def _f(value: Any, digits: int = 2) -> str:
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def table(latest: dict[str, Any]) -> str:
    rows = ["| figure (`results/latest.json` key) | value | what it is |", "|---|---:|---|"]
    grpo = latest.get("grpo_step_vs_trl")
    if grpo:
        c = grpo["conditions"]
        rows += [
            f"| `grpo_step_vs_trl.ratio` | **{_f(grpo['ratio'])}x** | TRL s/step / grit-exp s/step (target 1.5x); "
            f"{grpo['timed_steps_per_side']} timed steps per side, {len(c['order']) // 2} processes each, ABBA |",
            f"| `grpo_step_vs_trl.grit_s_per_step` | {_f(grpo['grit_s_per_step'], 3)} | median; rollout "
            f"{_f(grpo['grit_phases_s']['rollout_s'], 3)}, reward {_f(grpo['grit_phases_s']['reward_s'], 3)}, update "
            f"{_f(grpo['grit_phases_s']['update_s'], 3)} (of it reference {_f(grpo['grit_phases_s'].get('reference_s'), 3)}) |",
            f"| `grpo_step_vs_trl.trl_s_per_step` | {_f(grpo['trl_s_per_step'], 3)} | median; generate "
            f"{_f(grpo['trl_phases_s']['rollout_s'], 3)}, reward {_f(grpo['trl_phases_s']['reward_s'], 3)}, rest "
            f"{_f(grpo['trl_phases_s']['update_s'], 3)} |",
            f"| `grpo_step_vs_trl.grit_completion_tokens_per_s` / `trl_...` | {_f(grpo['grit_completion_tokens_per_s'], 0)}"
            f" / {_f(grpo['trl_completion_tokens_per_s'], 0)} | completion tokens per second of step time |",
            f"| `grpo_step_vs_trl.grit_peak_rss_mb` / `trl_...` | {_f(grpo['grit_peak_rss_mb'], 0)} / "
            f"{_f(grpo['trl_peak_rss_mb'], 0)} | peak RSS of the worker process (MB) |",
            f"| `grpo_step_vs_trl.identical_completions` | {_f(100 * grpo['identical_completions'], 1)}% | "
            f"token-identical completions at the same step (whole steps identical: {grpo['identical_steps']}) |",
        ]
    judge = latest.get("judge_vs_serial")
    if judge:
        rows.append(f"| `judge_vs_serial.ratio` | {_f(judge['ratio'], 1)}x | {judge['answers']} answers, fake server "
                    f"{_f(judge['latency_ms'], 0)} ms, concurrency {judge['concurrency']} vs one at a time |")
    for key in ("judge_overlap", "judge_overlap_concurrency_4"):
        overlap = latest.get(key)
        if overlap:
            rows.append(f"| `{key}.saved_s` | {_f(overlap['saved_s'], 3)} | generate + judge per step: "
                        f"{_f(overlap['after_generation_s'], 3)} s judging after, {_f(overlap['during_generation_s'], 3)}"
                        f" s during generation (judge.concurrency {overlap['conditions']['concurrency']}) |")
    stop = latest.get("rollout_stop_criterion")
    if stop:
        rows.append(f"| `rollout_stop_criterion.ratio` | {_f(stop['ratio'])}x | ms per decode step, HF "
                    f"StopStringCriteria {_f(stop['hf_ms_per_decode_step'])} vs token ids "
                    f"{_f(stop['token_ids_ms_per_decode_step'])} (same tokens: {stop['same_tokens']}) |")
        static, in_place = latest["rollout_static_cache"], latest["rollout_in_place_cache"]
        rows.append(f"| `rollout_static_cache.ratio_vs_dynamic` | {_f(static['ratio_vs_dynamic'])}x | static KV "
                    f"cache {_f(static['ms_per_decode_step'])} ms/decode step (not adopted, see below) |")
        rows.append(f"| `rollout_in_place_cache.ratio_vs_dynamic` | {_f(in_place['ratio_vs_dynamic'])}x | in-place "
                    f"KV cache {_f(in_place['ms_per_decode_step'])} ms/decode step (adopted; same tokens: "
                    f"{in_place['same_tokens']}) |")
        loop = latest["rollout_decode_loop"]
        rows.append(f"| `rollout_decode_loop.ratio_vs_generate` | {_f(loop['ratio_vs_generate'])}x | one rollout: "
                    f"HF `generate` (in-place cache) {_f(loop['generate_s_per_rollout'], 3)} s, grit-exp's decode loop "
                    f"(prompt prefilled once per group, finished rows dropped) {_f(loop['s_per_rollout'], 3)} s "
                    f"(adopted; same tokens: {loop['same_tokens']}) |")
        now = latest["rollout_now_vs_before"]
        rows.append(f"| `rollout_now_vs_before.ratio` | {_f(now['ratio'])}x | one rollout (8 x 4, 128 tokens): "
                    f"{_f(now['before_s_per_rollout'], 3)} s before issue 11 (HF `generate`, HF stop strings), "
                    f"{_f(now['now_s_per_rollout'], 3)} s now |")
    rewards = latest.get("rewards_throughput")
    if rewards:
        rows.append(f"| `rewards_throughput.rewards_and_metrics_per_s` | {_f(rewards['rewards_and_metrics_per_s'], 0)} | "
                    f"{rewards['completions']:,} replayed completions: rewards {_f(rewards['rewards_per_s'], 0)}/s, "
                    f"metrics {_f(rewards['metrics_per_s'], 0)}/s |")
    memory = latest.get("memory")
    if memory:
        rows.append(f"| `memory.growth_after_warmup_mb` | {_f(memory['growth_after_warmup_mb'], 1)} | RSS "
                    f"{_f(memory['rss_after_warmup_mb'], 0)} MB at step {memory['warmup_steps']} -> "
                    f"{_f(memory['rss_end_mb'], 0)} MB at step {memory['steps']} (flat: {memory['flat']}) |")
    gpu = latest["gpu"]
    if "skipped" in gpu:
        rows.append(f"| `gpu` | skipped | {gpu['skipped']} (`benchmarks/bench_gpu.py`) |")
    else:
        rows.append(f"| `gpu.s_per_step` | {_f(gpu['s_per_step'], 1)} | {gpu['device']}: "
                    f"{_f(gpu['generated_tokens_per_s_per_gpu'], 0)} generated tokens/s per GPU, peak "
                    f"{_f(gpu['peak_gpu_memory_gb'], 1)} GB, update MFU {_f(gpu['update_mfu'], 3)} |")
    return "\n".join(rows)


def main() -> int:
    latest = collect()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(latest, indent=2) + "\n")
    grpo = latest.get("grpo_step_vs_trl", {})
    conditions = grpo.get("conditions", {})
    section = "\n".join([
        START, "## Latest figures (`make bench`)", "",
        f"Measured {latest['measured']} on {latest['machine']['cpu_cores']} CPU cores shared with other jobs (load "
        f"average during the GRPO rounds: {conditions.get('load_average')}), torch threads per process: "
        f"{conditions.get('torch_threads')}; torch {latest['machine']['torch']}, transformers "
        f"{latest['machine']['transformers']}, TRL {latest['machine']['trl']}. All figures are in "
        "[`results/latest.json`](results/latest.json).", "", table(latest), END])
    text = README.read_text()
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text)
    print(table(latest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
