"""The sqlite verdict cache: round trip, chunked lookups, and several processes writing at once."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from grit_exp.judge.cache import JudgeCache


def test_round_trip_is_keyed_by_model_and_prompt(tmp_path) -> None:
    cache = JudgeCache(tmp_path / "sub" / "c.sqlite")
    cache.put("gpt-4o", "prompt A", 1.0, "{score: 1}")
    cache.put("gpt-4o", "prompt B", 0.5, "{score: 0.5}")
    assert cache.get_many("gpt-4o", ["prompt A", "prompt B", "prompt C"]) == {
        "prompt A": (1.0, "{score: 1}"),
        "prompt B": (0.5, "{score: 0.5}"),
    }
    assert cache.get_many("another-model", ["prompt A"]) == {}
    cache.close()
    assert JudgeCache(tmp_path / "sub" / "c.sqlite").get_many("gpt-4o", ["prompt A"]) == {
        "prompt A": (1.0, "{score: 1}")
    }


def test_lookups_of_more_prompts_than_sqlite_parameters(tmp_path) -> None:
    cache = JudgeCache(tmp_path / "c.sqlite")
    for n in range(1200):
        cache.put("m", f"prompt {n}", n % 2, "raw")
    found = cache.get_many("m", [f"prompt {n}" for n in range(1500)])
    assert len(found) == 1200 and found["prompt 7"] == (1.0, "raw")


def _write_many(path: str, worker: int, count: int) -> int:
    cache = JudgeCache(path)
    for n in range(count):
        cache.put("m", f"worker {worker} prompt {n}", 1.0, "{score: 1}")
        cache.get_many("m", [f"worker {1 - worker} prompt {n}"])
    cache.close()
    return count


def test_several_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    JudgeCache(path).close()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        written = list(pool.map(_write_many, [path, path], [0, 1], [300, 300]))
    assert written == [300, 300] and len(JudgeCache(path)) == 600
