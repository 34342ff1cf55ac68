"""The consistency metric and judge failures, against the fake judge server over real HTTP (client not mocked)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from eval_replay_fixture import replay_overrides
from PIL import Image

from grit_exp.evaluation.consistency import UNAVAILABLE_RULES, strip_coordinates
from grit_exp.evaluation.pictures import MODEL_COLOR, view_scale
from grit_exp.evaluation.runner import run_evaluation
from grit_exp.judge.vision import parse_image_choice
from grit_exp.testing.fake_judge_server import FakeJudgeServer, Fault, FaultKind

SIZE = (56, 28)  # Qwen grid [1, 2, 4] -> input 56 x 28: model boxes are original pixels
MODEL_BOX = [2, 2, 20, 14]
SCALE = view_scale(*SIZE)  # 448 / 56 = 8


def completion(k: int) -> str:
    return f"<think> object {k} {{\"bbox_2d\": {MODEL_BOX}, \"label\": \"cat\"}} </think><rethink> it is left </rethink><answer>yes</answer>"


def write_replay(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", SIZE, (200, 200, 200)).save(folder / "img.png")
    lines = [
        {"question": f"Is object {k} on the left?", "answer": "yes", "image": "img.png", "width": SIZE[0],
         "height": SIZE[1], "bboxs": [[2, 2, 20, 14]], "dataset": "vsr", "completion": completion(k),
         "image_grid_thw": [1, 2, 4]}
        for k in range(n)
    ]
    path = folder / "replay.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def has_model_box(png: bytes) -> bool:
    """True when the red outline runs along the model box's left and top edges (mid-points)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    x1, y1, x2, y2 = (v * SCALE for v in MODEL_BOX)
    return image.getpixel((int(x1) + 1, int((y1 + y2) / 2))) == MODEL_COLOR and \
        image.getpixel((int((x1 + x2) / 2), int(y1) + 1)) == MODEL_COLOR


def sees_the_model_box(reasoning: str, images: list[bytes]) -> str:
    marked = [i for i, png in enumerate(images) if has_model_box(png)]
    assert len(marked) == 1, "exactly one image carries the model's boxes"
    return f"Image {marked[0]}"


def openai_judge(server: FakeJudgeServer, *more: str) -> list[str]:
    return ["judge=openai", f"judge.base_url={server.base_url}", "judge.cache_path=null", "judge.max_retries=1",
            "judge.timeout_s=5", *more]


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")


def run(compose_eval, tmp_path, replay, *overrides):
    cfg = compose_eval(*replay_overrides(replay, *overrides))
    return run_evaluation(cfg, tmp_path / "run")


def test_a_judge_that_sees_the_boxes_scores_one(compose_eval, tmp_path, api_key):
    replay = write_replay(tmp_path / "replay")
    with FakeJudgeServer(vision_fn=sees_the_model_box) as server:
        result = run(compose_eval, tmp_path, replay, *openai_judge(server, "eval.consistency=true"))
    c = result.metrics["vsr"]["consistency"]
    assert c == {"mean": 1.0, "std": 0.0, "repeats": [1.0, 1.0, 1.0], "n": 4, "not_eligible": 0, "failures": 0}
    assert result.metrics["_meta"]["consistency"] == "openai:gpt-4o"
    trials = [t for r in result.records for t in r["consistency"]["trials"]]
    assert len(trials) == 12 and {t["model_image"] for t in trials} == {0, 1}, "the image order is drawn per trial"
    assert result.flat["eval/vsr/consistency_mean"] == 1.0


def test_image_order_and_boxes_come_from_the_seed(compose_eval, tmp_path, api_key):
    replay = write_replay(tmp_path / "replay")
    with FakeJudgeServer() as server:  # always answers "Image 0": right exactly when the model's image came first
        first = run(compose_eval, tmp_path / "a", replay, *openai_judge(server, "eval.consistency=true"))
        again = run(compose_eval, tmp_path / "b", replay, *openai_judge(server, "eval.consistency=true"))
        other = run(compose_eval, tmp_path / "c", replay, *openai_judge(server, "eval.consistency=true", "seed=7"))
    orders = [[t["model_image"] for t in r["consistency"]["trials"]] for r in first.records]
    expected = [sum(1 for r in orders if r[k] == 0) / len(orders) for k in range(3)]
    assert first.metrics["vsr"]["consistency"]["repeats"] == expected
    assert orders == [[t["model_image"] for t in r["consistency"]["trials"]] for r in again.records]
    assert orders != [[t["model_image"] for t in r["consistency"]["trials"]] for r in other.records]


def test_vision_judge_failures_are_counted_not_scored(compose_eval, tmp_path, api_key):
    replay = write_replay(tmp_path / "replay")
    reasoning = strip_coordinates(completion(0))
    with FakeJudgeServer(vision_fn=sees_the_model_box) as server:
        server.add_faults(*[Fault(FaultKind.SERVER_ERROR, status=503)] * 6, answer=reasoning)  # 3 trials x 2 attempts
        result = run(compose_eval, tmp_path, replay, *openai_judge(server, "eval.consistency=true"))
    c = result.metrics["vsr"]["consistency"]
    assert c["failures"] == 3 and c["repeats"] == [1.0, 1.0, 1.0] and c["n"] == 4


def test_rules_judge_makes_the_metric_unavailable_not_a_number(compose_eval, tmp_path):
    replay = write_replay(tmp_path / "replay")
    result = run(compose_eval, tmp_path, replay, "eval.consistency=true")
    on_disk = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert on_disk["vsr"]["consistency"] == UNAVAILABLE_RULES == "unavailable: judge=rules"
    assert on_disk["_meta"]["consistency"] == UNAVAILABLE_RULES
    assert UNAVAILABLE_RULES in (tmp_path / "run" / "report.html").read_text()
    assert "eval/vsr/consistency_mean" not in result.flat


def test_answer_judge_failures_are_counted_and_left_out_of_acc(compose_eval, tmp_path, api_key):
    replay = write_replay(tmp_path / "replay")
    lines = replay.read_text().splitlines()
    lines[1] = lines[1].replace("<answer>yes</answer>", "<answer>nope</answer>")
    lines[2] = lines[2].replace("<answer>yes</answer>", "<answer>no</answer>")
    replay.write_text("\n".join(lines) + "\n")
    with FakeJudgeServer(faults_by_answer={"nope": [Fault(FaultKind.SERVER_ERROR, status=503)] * 2}) as server:
        result = run(compose_eval, tmp_path, replay, *openai_judge(server))
    m = result.metrics["vsr"]
    # 4 samples: "yes" x2 (score 1), "no" (score 0), "nope" (failed twice: a failure, not a 0)
    assert m["judge_failures"] == 1 and m["n_judged"] == 3 and m["acc"] == pytest.approx(2 / 3)
    assert result.metrics["_meta"]["judge"] == "openai:gpt-4o"
    failed = result.records[1]
    assert failed["judge_failure"] and failed["metrics"]["acc"] is None and "HTTP 503" in failed["judge_error"]
    assert failed["rewards"]["judge_accuracy"] == 0.0  # the reward counts a failure as 0, as training does
    assert [r["judge_raw"] for r in result.records if not r["judge_failure"]] == ["{score: 1}", "{score: 0}", "{score: 1}"]


def test_strip_coordinates_keeps_the_words_only():
    text = ('<think> Let me check {"bbox_2d": [142, 314, 299, 447], "label": "chair"} and '
            "<ref>dog</ref><box>[[1, 2, 3, 4], [5, 6, 7, 8]]</box> at 10, 20, 30, 40 </think>\n"
            "<rethink> two chairs (1.5, 2, 3, 4) </rethink><answer>2</answer>")
    out = strip_coordinates(text)
    assert not any(ch.isdigit() for ch in out), out
    assert out.startswith("Let me check") and "chair" in out and "dog" in out and "two chairs" in out
    assert "<" not in out and "answer" not in out


@pytest.mark.parametrize(
    ("reply", "choice"),
    [("Image 1", 1), ("image 0.", 0), ("**Image 1**", 1), ("Image 0 or Image 1", None), ("Image 2", None), ("", None),
     ("The first one", None)],
)
def test_parse_image_choice(reply, choice):
    assert parse_image_choice(reply, 2) == choice
