"""Evaluation of completions with zoom turns (issue #20): the per-sample zoom records, the zoom metrics in
metrics.json and the flat eval/<dataset>/zoom/<key> keys, the turn pictures in report.html; and nothing of
it when zoom is off."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf
from PIL import Image

from grit_exp.config import RewardConfig
from grit_exp.data.schema import GritRow
from grit_exp.evaluation.items import EvalItem
from grit_exp.evaluation.runner import evaluate_items
from grit_exp.evaluation.samples import Completed
from grit_exp.evaluation.settings import EvalOptions
from grit_exp.evaluation.zoom_pictures import CROP_COLOR
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.hydra_app import CONF_DIR
from grit_exp.judge.base import JudgeResult, JudgeStats
from grit_exp.rollout.zoom.calls import ZoomCall

GOLD = [100.0, 100.0, 140.0, 140.0]
RIGHT = "<think> look <zoom>[1, 2, 3, 4]</zoom> </think><rethink> r </rethink><answer> red </answer>"
WRONG = "<think> look </think><rethink> r </rethink><answer> blue </answer>"


class ExactJudge:
    name = "exact"

    def __init__(self) -> None:
        self.stats = JudgeStats()

    def score(self, requests):
        return [JudgeResult(score=float(r.prediction.strip() == r.reference), raw="x", failed=False) for r in requests]


def load_reward(name: str):
    """conf/reward/<name>.yaml over the RewardConfig schema, its parent presets first (as Hydra composes it)."""
    raw = OmegaConf.load(CONF_DIR / "reward" / f"{name}.yaml")
    merged = OmegaConf.structured(RewardConfig)
    for parent in [d for d in raw.pop("defaults") if d not in ("schema", "_self_")]:
        merged = OmegaConf.merge(merged, load_reward(parent))
    return OmegaConf.merge(merged, raw)


def crop(turn, box):
    return ZoomCall(turn=turn, trigger_text=f"<zoom>{list(box)}</zoom>", box=tuple(map(float, box)), crop_box=box)


def run_eval(tmp_path, zoom: bool):
    image = tmp_path / "scene.png"
    picture = Image.new("RGB", (448, 448), (200, 200, 200))
    picture.paste((255, 0, 0), (100, 100, 140, 140))
    picture.save(image)
    geometry = ImageGeometry(family="qwen2_5_vl", orig_width=448, orig_height=448, input_width=448, input_height=448)
    cases = [  # (completion, zoom calls)
        (RIGHT, [crop(1, (90, 90, 150, 150))]),
        (WRONG, [ZoomCall(1, "<zoom>[1]</zoom>", None, None, "malformed"), crop(2, (300, 300, 400, 400))]),
        (RIGHT, []),
        (WRONG, []),
    ]
    items = [EvalItem(row=GritRow(question=f"Colour {k}?", answer="red", image=str(image), width=448, height=448,
                                  bboxs=[GOLD], dataset="synth_zoom", source=f"t.jsonl:{k + 1}"),
                      image_missing=False, set_name="synth_zoom") for k in range(len(cases))]

    def complete(batch):
        return [Completed(i, item, f"\nQuestion: {item.row.question}", cases[i][0], geometry, 9, None,
                          zoom_calls=cases[i][1] if zoom else None) for i, item in batch]

    reward = load_reward("grit_zoom")
    out = tmp_path / ("zoom" if zoom else "plain")
    result = evaluate_items(items, out, complete=complete, reward_cfg=reward, judge=ExactJudge(),
                            options=EvalOptions(batch_size=4, num_pictures=4), meta={}, zoom_max_turns=2 if zoom else None)
    return result, out


def test_zoom_metrics_samples_and_report(tmp_path):
    result, out = run_eval(tmp_path, zoom=True)
    zoom = json.loads((out / "metrics.json").read_text())["synth_zoom"]["zoom"]
    assert zoom == pytest.approx({
        "n": 4, "mean_calls": 0.75, "mean_turns": 1.5, "zoom_rate": 0.5, "malformed_rate": 1 / 3,
        "crop_iou": (1600 / 3600 + 0.0) / 2, "crop_gold_coverage": 0.5, "n_crop_iou": 2,
        "acc_zoomed": 0.5, "n_zoomed": 2, "acc_not_zoomed": 0.5, "n_not_zoomed": 2,
    })
    assert result.flat["eval/synth_zoom/zoom/crop_iou"] == pytest.approx(800 / 3600)
    assert result.flat["eval/synth_zoom/zoom/acc_zoomed"] == 0.5
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["zoom"]["num_crops"] for r in records] == [1, 1, 0, 0]
    first = records[0]["zoom"]["calls"][0]
    assert first["crop_box"] == [90, 90, 150, 150] and first["crop_iou"] == pytest.approx(1600 / 3600)
    assert (out / first["crop_file"]).is_file()
    assert records[1]["zoom"]["calls"][0]["ok"] is False and "crop_file" not in records[1]["zoom"]["calls"][0]
    # the reward's tool-use terms saw the calls: tool bonus on the zoomed right answer only
    assert [r["rewards"]["tool_bonus"] for r in records] == [0.5, 0.0, 0.0, 0.0]
    turn = Image.open(out / first["crop_file"]).convert("RGB")
    assert turn.getpixel((90, 90)) == CROP_COLOR  # the crop box on the original (448 px: shown 1:1)
    assert turn.getpixel((448 + 8 + 224, 224)) == (255, 0, 0)  # the crop's centre, scaled up: the red square
    page = (out / "report.html").read_text()
    assert "<h2>Zoom turns</h2>" in page and page.count('alt="turn ') == 2
    assert "text reply: malformed" in page and "answered from the first view" in page


def test_zoom_off_adds_nothing(tmp_path):
    result, out = run_eval(tmp_path, zoom=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert "zoom" not in metrics["synth_zoom"] and not any("/zoom/" in k for k in result.flat)
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all("zoom" not in r for r in records)
    assert all(r["rewards"]["tool_bonus"] == 0.0 for r in records)
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"sample_{i:06d}.png" for i in range(4)]
    assert "Zoom turns" not in (out / "report.html").read_text()
