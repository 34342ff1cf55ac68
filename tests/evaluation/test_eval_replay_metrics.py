"""The paper's metrics on 42 replayed completions, against values worked out by hand in the fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eval_replay_fixture import LINES, expected_means, replay_overrides, write_fixture

from grit_exp.evaluation.runner import run_evaluation
from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]
DATASETS = ["vsr", "tallyqa", "gqa", "ovd_q", "ovd_i", "mme_count"]


@pytest.fixture(scope="module")
def evaluated(grit_cache, tmp_path_factory):
    """One replay evaluation of the fixture, shared by the tests of this module (they only read it)."""
    folder = tmp_path_factory.mktemp("replay_metrics")
    replay = write_fixture(folder / "replay")
    cfg = compose_config("eval", *replay_overrides(replay))
    result = run_evaluation(cfg, folder / "run")
    return result, folder / "run"


def approx(expected: dict) -> dict:
    return {k: (None if v is None else pytest.approx(v, rel=1e-12, abs=1e-15)) for k, v in expected.items()}


def test_fixture_is_big_and_covers_the_cases():
    assert len(LINES) >= 40
    assert {line.family for line in LINES} == {"qwen2_5_vl", "internvl"}
    assert any(not line.kept for line in LINES), "duplicates"
    assert any(line.bboxs == [] for line in LINES), "rows without GT"
    assert any("[" not in line.completion and "0, 0" not in line.completion for line in LINES), "no predicted box"
    assert any(line.family == "qwen2_5_vl" and not line.grid for line in LINES), "Qwen frame recomputed"


@pytest.mark.parametrize(
    ("metric", "fixture_key"),
    [("giou_paper", "giou_paper"), ("giou", "giou"), ("ovd_map_paper", "ovd_paper"), ("ovd_map", "ovd"), ("acc", "acc")],
)
def test_dataset_means_equal_the_hand_worked_values(evaluated, metric, fixture_key):
    result, run = evaluated
    on_disk = json.loads((run / "metrics.json").read_text())
    got = {d: on_disk[d][metric] for d in DATASETS}
    assert got == approx(expected_means(fixture_key))


def test_counts_dedup_and_meta(evaluated):
    result, run = evaluated
    m = result.metrics
    kept = [line for line in LINES if line.kept]
    for dataset in DATASETS:
        lines = [line for line in kept if line.dataset == dataset]
        assert m[dataset]["n"] == len(lines)
        assert m[dataset]["duplicates_removed"] == sum(1 for x in LINES if x.dataset == dataset and not x.kept)
        assert m[dataset]["n_giou"] == sum(1 for x in lines if x.giou_paper is not None)
        assert m[dataset]["n_ovd"] == sum(1 for x in lines if x.ovd is not None)
        assert m[dataset]["missing_images"] == 0 and m[dataset]["judge_failures"] == 0
        assert m[dataset]["mean_completion_tokens"] is None  # replay lines carry no token counts
    assert m["vsr"]["duplicates_removed"] == 1 and m["ovd_q"]["duplicates_removed"] == 1
    assert m["_meta"]["judge"] == "rules" and m["_meta"]["decoding"] == "replay"
    assert m["_meta"]["num_processes"] == 1 and m["_meta"]["consistency"] == "off"
    assert (run / "run_info.json").is_file() and (run / "metrics.jsonl").is_file()
    curve = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert curve["eval/vsr/giou_paper"] == m["vsr"]["giou_paper"]


def test_samples_hold_every_per_sample_value(evaluated):
    _, run = evaluated
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    kept = [line for line in LINES if line.kept]
    assert [s["index"] for s in samples] == list(range(len(kept)))
    for sample, line in zip(samples, kept, strict=True):
        assert (sample["dataset"], sample["question"], sample["completion"]) == (line.dataset, line.question, line.completion)
        m = sample["metrics"]
        for key, value in (("giou_paper", line.giou_paper), ("giou", line.giou), ("ovd_precision_paper", line.ovd_paper),
                           ("ovd_precision", line.ovd), ("acc", line.acc)):
            assert m[key] == (None if value is None else pytest.approx(value, rel=1e-12, abs=1e-15)), (key, line.question)
        assert set(sample["rewards"]) == {"format", "count", "judge_accuracy", "bleu1"}
        assert sample["reward"] == pytest.approx(sum(sample["rewards"].values()))  # grit_paper: all weights 1
        assert sample["image_missing"] is False and sample["errors"] == []
    first = samples[0]  # vsr, Qwen with grid [1, 4, 8]: model [0, 0, 50, 25] -> original [0, 0, 100, 50]
    assert first["boxes"] == [{"box": [0, 0, 50, 25], "section": "think", "label": "cat", "kind": "bbox_2d",
                               "original": [0, 0, 100, 50]}]
    assert first["paper_boxes"][0]["original_paper"] == [0, 0, 50, 25]
    assert first["geometry"]["input_width"] == 112 and first["judge_raw"]
    gqa_two = next(s for s in samples if s["question"] == "What is near the window?")  # InternVL truncation
    assert [b["original_paper"] for b in gqa_two["paper_boxes"]] == [[0, 0, 166, 75], [166, 75, 249, 112]]
    assert [b["original"] for b in gqa_two["paper_boxes"]] == [[0, 0, 166.5, 75], [166.5, 75, 249.75, 112.5]]
    tally = next(s for s in samples if s["dataset"] == "tallyqa")  # no grid: Qwen frame recomputed, 140 x 56
    assert (tally["geometry"]["input_width"], tally["geometry"]["input_height"]) == (140, 56)
    untagged = next(s for s in samples if s["question"] == "Are there four dogs?")  # no <answer>: 0, not judged
    assert untagged["judged_text"] == "none (no <answer>)" and untagged["metrics"]["acc"] == 0.0
    assert untagged["answer_tag"] is False and untagged["judge_raw"] is None and first["answer_tag"] is True


def test_replay_never_imports_a_model_library(replay_file, tmp_path, grit_cache):
    """A fresh interpreter scores the replay with a model path that does not exist, and never imports transformers."""
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from eval_replay_fixture import replay_overrides
from tests.helpers.configs import compose_config
from grit_exp.evaluation.runner import run_evaluation
cfg = compose_config("eval", *replay_overrides(Path({str(replay_file)!r})))
result = run_evaluation(cfg, Path({str(tmp_path / 'run')!r}))
assert result.metrics["vsr"]["n"] == 10
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("transformers", "grit_exp.models"))
assert not bad, bad
assert "grit_exp.models" not in sys.modules and "grit_exp.rollout.hf" not in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]
