"""metrics.json `_meta.judge_verdicts` says how many verdicts came from the judge's cache, and a cache
filled against one endpoint (the local fake server) serves no verdict to a run against another one.
Real HTTP to two fake servers on 127.0.0.1; the openai client is not mocked."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from grit_exp.evaluation.runner import run_evaluation
from grit_exp.testing.fake_judge_server import FakeJudgeServer


def write_replay(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (56, 28), (200, 200, 200)).save(folder / "img.png")
    lines = [{"question": f"Is object {k} on the left?", "answer": "yes", "image": "img.png", "width": 56, "height": 28,
              "bboxs": [[2, 2, 20, 14]], "dataset": "vsr", "image_grid_thw": [1, 2, 4], "model_family": "qwen2_5_vl",
              "completion": "<think> [2, 2, 20, 14] </think><rethink> ok </rethink><answer>yes</answer>"}
             for k in range(3)]
    path = folder / "replay.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_cache_hits_are_reported_and_keyed_by_endpoint(compose_eval, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    replay = write_replay(tmp_path / "replay")
    cache = tmp_path / "verdicts.sqlite"

    def evaluate(server: FakeJudgeServer, name: str) -> dict:
        cfg = compose_eval("rollout=replay", f"rollout.path={replay}", "judge=openai", f"judge.base_url={server.base_url}",
                           f"judge.cache_path={cache}", "judge.max_retries=1", "eval.num_pictures=0")
        run_evaluation(cfg, tmp_path / name)
        return json.loads((tmp_path / name / "metrics.json").read_text())["_meta"]["judge_verdicts"]

    with FakeJudgeServer() as dry_run_server, FakeJudgeServer() as other_endpoint:
        first = evaluate(dry_run_server, "first")
        assert first == {"judged": 3, "from_cache": 0, "requests": 3, "failures": 0}
        again = evaluate(dry_run_server, "again")
        assert again == {"judged": 3, "from_cache": 3, "requests": 0, "failures": 0}
        other = evaluate(other_endpoint, "other")
        assert other == {"judged": 3, "from_cache": 0, "requests": 3, "failures": 0}
        assert other_endpoint.requests == 3
