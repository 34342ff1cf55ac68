"""benchmarks/bench_zoom_rollout.py's core on a tiny setting (3 prompts x G=2, 96 new tokens): the in-place zoom
rollout and the re-prefill-every-turn baseline write the same completions (model-written tokens and tool turns,
token for token) and the same calls, and the work holds real zoom calls that got crops, in more than one turn
for some completion; the baseline really re-prefills (one generate call per turn round). With aligned calls the
in-place loop takes one tool-turn pass per call step and its KV cache holds no holes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_zoom_rollout.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_zoom_rollout", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_sides_write_identical_tokens_with_real_zoom_calls(grit_cache, tiny_model_paths) -> None:
    bench = load_bench()
    cfg, adapter, model, rows, texts = bench.setup(3, 96)
    with torch.no_grad():
        ours = bench.in_place(cfg, adapter, model, rows, texts, 2)
        theirs = bench.reprefill(cfg, adapter, model, rows, texts, 2)
    assert len(ours["completions"]) == 6
    assert ours["completions"] == theirs["completions"]
    assert ours["tool"] == theirs["tool"]
    assert ours["calls"] == theirs["calls"]
    counts, baseline = bench.summary_of(ours), bench.summary_of(theirs)
    assert counts["crops"] >= 2 and counts["crops"] == counts["tool_calls"]  # every planned call gets a crop
    assert max(len(row) for row in ours["calls"]) == 2  # some completion zooms twice: three turns
    assert counts["tool_tokens"] > 0 and counts["model_tokens"] == baseline["model_tokens"] > 0
    assert counts["tool_passes"] >= 1 and baseline["prefills"] == 1 + max(len(row) for row in theirs["calls"])


def test_aligned_calls_take_one_tool_pass_per_call_step(grit_cache, tiny_model_paths) -> None:
    bench = load_bench()
    cfg, adapter, model, rows, texts = bench.setup(3, 96)
    with torch.no_grad():
        ours = bench.in_place(cfg, adapter, model, rows, texts, 2, "aligned")
        theirs = bench.reprefill(cfg, adapter, model, rows, texts, 2, "aligned")
    assert ours["completions"] == theirs["completions"] and ours["calls"] == theirs["calls"]
    assert bench.summary_of(ours)["crops"] >= 2
    assert ours["tool_passes"] == 1  # every row's first call closes at token 40 (the second one, 100, is past 96)
    assert ours["kv_columns"] == ours["longest_conversation"]  # no holes: the turns line up
