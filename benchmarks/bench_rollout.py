"""Rollout variants on the GRPO benchmark's work: which stop criterion, which KV cache, which decode loop.

One process, the cached warm start, the benchmark's prompts and seeds (8 prompts x G=4, up to 128
new tokens, `</answer>`), each variant generating the same steps in interleaved order (A B B A ...)
so that the machine's load drifts over all of them alike. Reports the median seconds per rollout and
per decode step, and checks that every variant produced the same completions (real tokens) as the first.

Variants: `hf_stop_strings` (HF `generate` with HF's StopStringCriteria and DynamicCache: the code
before issue 11), `token_ids` (grit-exp's `StopStringsByTokenIds`, DynamicCache),
`token_ids_static_cache` (the same with `cache_implementation="static"`), `token_ids_in_place_cache`
(grit-exp's in-place KV cache, `rollout/kv_cache.py`, still in HF `generate`), `decode_loop`
(`HFRollout.generate`: grit-exp's decode loop, `rollout/decode.py`, over the in-place cache, each
prompt prefilled once, finished rows dropped: what rollouts run now).

Run: `python benchmarks/bench_rollout.py [--rounds 4 --steps 3]`; results/rollout_variants.json.
Left out: torch.compile (see benchmarks/README.md: on this CPU it does not pay for itself).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import grpo_setup  # noqa: E402

log = logging.getLogger("bench")
VARIANTS = ("hf_stop_strings", "token_ids", "token_ids_static_cache", "token_ids_in_place_cache", "decode_loop")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))

    from transformers import LogitsProcessorList

    from grit_exp.data.prompts import build_user_text
    from grit_exp.rollout.hf import HFRollout, only_these_settings
    from grit_exp.rollout.kv_cache import in_place_cache
    from grit_exp.rollout.seeded_sampling import PerRowSeededSampler
    from grit_exp.rollout.types import completion_mask

    cfg = grpo_setup.compose_cfg()
    adapter, rows, start = grpo_setup.prepare(cfg)
    model = adapter.load_model("cpu", path=str(start), dtype="float32").eval()
    rollout = HFRollout(adapter, cfg.rollout)
    base = rollout.generation_config(greedy=True)
    rows_of_step, texts_of_step = {}, {}
    for step in range(1, args.steps + 1):
        rows_of_step[step] = grpo_setup.step_rows(rows, step)
        texts_of_step[step] = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows_of_step[step]]

    def completions(ids: torch.Tensor) -> list[list[int]]:
        """Each row's real tokens (through its end-of-turn, without the padding after a stop string)."""
        mask = completion_mask(ids, adapter.eos_token_ids) * (ids != adapter.pad_token_id).long()
        return [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]

    def generate(variant: str, step: int) -> tuple[float, int, list[list[int]]]:
        """(seconds, decode steps, completions); the seconds include processing the prompts (as a rollout does)."""
        seeds = grpo_setup.step_seeds(cfg.seed, step)
        if variant == "decode_loop":
            started = time.perf_counter()
            out = rollout.generate(model, rows_of_step[step], texts_of_step[step],
                                   num_generations=grpo_setup.NUM_GENERATIONS, completion_seeds=seeds)
            return time.perf_counter() - started, out.completion_ids.shape[1], completions(out.completion_ids)
        config = copy.deepcopy(base)
        kwargs = {}
        if variant == "hf_stop_strings":
            config.stop_strings = list(cfg.rollout.stop_strings)
            kwargs["tokenizer"] = adapter.tokenizer
        else:
            kwargs["stopping_criteria"] = rollout.stop_criteria
        if variant == "token_ids_static_cache":
            config.cache_implementation = "static"
        if variant == "token_ids_in_place_cache":
            kwargs["past_key_values"] = in_place_cache(int(cfg.rollout.max_new_tokens))
        sampler = PerRowSeededSampler(seeds, float(cfg.rollout.temperature), int(cfg.rollout.top_k),
                                      float(cfg.rollout.top_p), torch.device("cpu"))
        started = time.perf_counter()
        prompt = adapter.build_prompt_batch(rows_of_step[step], texts_of_step[step]).repeat_interleave(
            grpo_setup.NUM_GENERATIONS)
        with only_these_settings(model, config), torch.no_grad():
            out = model.generate(**prompt.inputs, generation_config=config,
                                 logits_processor=LogitsProcessorList([sampler]), **kwargs)
        seconds = time.perf_counter() - started
        ids = out[:, prompt.prompt_length:]
        return seconds, ids.shape[1], completions(ids)

    for variant in VARIANTS:  # warm-up: first calls are slow
        generate(variant, 1)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    per_token: dict[str, list[float]] = {v: [] for v in VARIANTS}
    reference: dict[int, list[list[int]]] = {}
    same = {v: True for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            for step in range(1, args.steps + 1):
                seconds, decode_steps, tokens = generate(variant, step)
                times[variant].append(seconds)
                per_token[variant].append(seconds / decode_steps)
                same[variant] &= tokens == reference.setdefault(step, tokens)
    result = {v: {"s_per_rollout": statistics.median(times[v]), "ms_per_decode_step": 1000 * statistics.median(per_token[v]),
                  "same_tokens_as_first": same[v], "rollouts": len(times[v])} for v in VARIANTS}
    result["conditions"] = {"load_average": os.getloadavg()[0], "torch_threads": torch.get_num_threads()}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "rollout_variants.json").write_text(json.dumps(result, indent=2) + "\n")
    for v in VARIANTS:
        log.info("%-25s %.3f s/rollout  %.2f ms/decode step  same tokens: %s", v, result[v]["s_per_rollout"],
                 result[v]["ms_per_decode_step"], result[v]["same_tokens_as_first"])
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
