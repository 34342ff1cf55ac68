"""Two real processes (torchrun, gloo on CPU) give the same files as one: no duplicates, no padding."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eval_replay_fixture import LINES, replay_overrides, write_fixture

from grit_exp.evaluation.runner import merge_records, run_evaluation, shard_batches
from grit_exp.testing.fake_judge_server import FakeJudgeServer

ROOT = Path(__file__).resolve().parents[2]


def pick_by_hash(reasoning: str, images: list[bytes]) -> str:
    """A deterministic vision judge whose verdict depends on the exact pixels of both images."""
    digests = [hashlib.sha256(png).hexdigest() for png in images]
    return "Image 0" if digests[0] < digests[1] else "Image 1"


def test_two_processes_write_the_same_files_as_one(compose_eval, tmp_path, monkeypatch):
    replay = write_fixture(tmp_path / "replay")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with FakeJudgeServer(vision_fn=pick_by_hash) as server:
        overrides = replay_overrides(
            replay, "judge=openai", f"judge.base_url={server.base_url}", "judge.cache_path=null",
            "eval.consistency=true", "eval.batch_size=4", "eval.num_pictures=5",
        )
        one = tmp_path / "one"
        run_evaluation(compose_eval(*overrides), one)
        two = tmp_path / "two"
        out = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
             "-m", "grit_exp.evaluate", *overrides, f"hydra.run.dir={two}"],
            capture_output=True, text=True, cwd=ROOT, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        assert out.returncode == 0, out.stderr[-4000:]
        assert server.requests > 0
    metrics_one, metrics_two = (p.joinpath("metrics.json").read_text() for p in (one, two))
    assert '"num_processes": 1' in metrics_one and '"num_processes": 2' in metrics_two
    assert metrics_two.replace('"num_processes": 2', '"num_processes": 1') == metrics_one
    assert (two / "samples.jsonl").read_bytes() == (one / "samples.jsonl").read_bytes()
    assert len((one / "samples.jsonl").read_text().splitlines()) == sum(line.kept for line in LINES)
    pictures = sorted(p.name for p in (one / "images").iterdir())
    assert len(pictures) == 5 and pictures == sorted(p.name for p in (two / "images").iterdir())
    for name in pictures:
        assert (one / "images" / name).read_bytes() == (two / "images" / name).read_bytes()
    consistency = json.loads(metrics_one)["vsr"]["consistency"]
    assert consistency["n"] > 0 and consistency["failures"] == 0


def test_shards_cover_every_index_once_for_any_process_count():
    for n in (0, 1, 7, 37):
        for world in (1, 2, 3, 8):
            got = sorted(i for rank in range(world) for batch in shard_batches(n, 4, rank, world) for i in batch)
            assert got == list(range(n))
    assert shard_batches(10, 4, 1, 2) == [range(4, 8)]


def test_merge_refuses_duplicated_or_missing_records():
    a, b = [{"index": 0}, {"index": 2}], [{"index": 1}]
    assert [r["index"] for r in merge_records([a, b], 3)] == [0, 1, 2]
    for gathered in ([a, b + [{"index": 2}]], [a]):
        try:
            merge_records(gathered, 3)
        except RuntimeError as err:
            assert "do not add up" in str(err)
        else:
            raise AssertionError("a bad merge must raise")


@pytest.mark.slow
def test_two_processes_of_the_live_tiny_model_match_one(tmp_path, grit_cache, tiny_model_paths):
    """Greedy generation too: batches are the same whatever the process count, so the texts are.

    The tiny model's weights get large noise first: untrained, it writes newlines only, which would
    agree whatever the batching."""
    import torch

    from grit_exp.models.qwen import QwenAdapter

    model = QwenAdapter.model_class.from_pretrained(tiny_model_paths["tiny_qwen2_5_vl"])
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=noise) * 0.5)
    model.save_pretrained(tmp_path / "noisy")
    common = ["dataset.synthetic.num_train=48", "dataset.synthetic.num_val=8", "rollout.max_new_tokens=10",
              "eval.batch_size=3", "eval.num_pictures=2", f"eval.checkpoint={tmp_path / 'noisy'}"]
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache), "OMP_NUM_THREADS": "1"}
    launches = {
        "one": [sys.executable, "-m", "grit_exp.evaluate"],
        "two": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "grit_exp.evaluate"],
    }
    for name, launch in launches.items():
        out = subprocess.run([*launch, *common, f"hydra.run.dir={tmp_path / name}"], capture_output=True, text=True,
                             cwd=ROOT, timeout=600, env=env)
        assert out.returncode == 0, out.stderr[-4000:]
    assert (tmp_path / "two" / "samples.jsonl").read_bytes() == (tmp_path / "one" / "samples.jsonl").read_bytes()
    texts = [json.loads(x)["completion"] for x in (tmp_path / "one" / "samples.jsonl").read_text().splitlines()]
    assert len(set(texts)) == len(texts) == 8, "distinct completions: the comparison means something"
    one, two = ((tmp_path / n / "metrics.json").read_text() for n in ("one", "two"))
    assert two.replace('"num_processes": 2', '"num_processes": 1') == one
