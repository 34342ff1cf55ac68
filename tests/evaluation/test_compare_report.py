"""`python -m grit_exp.report compare A B`: two evaluations side by side, changed samples first."""

from __future__ import annotations

import json

from eval_replay_fixture import replay_overrides
from PIL import Image

from grit_exp.evaluation.runner import run_evaluation
from grit_exp.report import main
from tests.helpers.html_dom import parse

RIGHT = "<think> there [0, 0, 30, 30] </think><rethink> one </rethink><answer>{}</answer>"


def evaluation(tmp_path, compose_eval, name: str, answers: list[str]):
    folder = tmp_path / name
    folder.mkdir()
    Image.new("RGB", (64, 32), (90, 90, 90)).save(tmp_path / "img.png")
    rows = [{"question": f"Is it {i}?", "answer": "yes", "image": str(tmp_path / "img.png"), "width": 64, "height": 32,
             "bboxs": [[0, 0, 30, 30]], "dataset": "vsr", "completion": RIGHT.format(answer)} for i, answer in enumerate(answers)]
    (folder / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_evaluation(compose_eval(*replay_overrides(folder / "replay.jsonl")), folder / "eval")
    return folder / "eval"


def test_compare_page_side_by_side(compose_eval, tmp_path):
    before = evaluation(tmp_path, compose_eval, "a", ["no", "no", "yes"])
    after = evaluation(tmp_path, compose_eval, "b", ["yes", "no", "no"])
    out = tmp_path / "compare.html"
    assert main(["compare", str(before), str(after), "--out", str(out)]) == 0
    page = parse(out.read_text())
    rows = {r.children[1].text(): [c.text() for c in r.children[2:]] for r in page.find("table", cls="compare-metrics").find_all("tr")[1:]}
    assert rows["accuracy"] == ["0.3333", "0.3333", "+0.0000"] and rows["n"] == ["3", "3", "+0.0000"]
    outcomes = page.find("table", cls="outcomes").find_all("tr")
    assert [c.text() for c in outcomes[1].children] == ["1", "1", "1", "0"]  # broke, fixed, still failing, still fine
    pairs = page.find_all("div", cls="pair")
    assert [p.find("h3").text() for p in pairs] == ["#2 · vsr: broke", "#0 · vsr: fixed", "#1 · vsr: still failing"]
    sides = pairs[0].find_all("div", cls="side")
    assert [s.find("h4").text() for s in sides] == ["A (before) ok", "B (after) wrong answer"]
    assert all(s.find("img").attrs["src"].startswith("data:image/png;base64,") for s in sides)
    assert [t.text() for t in sides[1].find_all("span", cls="tag")][:1] == ["1"]


def test_compare_bad_folder_names_it_and_its_evaluations(tmp_path, caplog):
    run = tmp_path / "run"
    (run / "eval" / "step_0").mkdir(parents=True)
    (run / "eval" / "step_0" / "metrics.json").write_text("{}")
    assert main(["compare", str(run), str(run)]) == 2
    err = caplog.text
    assert f"{run}: expected an evaluation folder with metrics.json and samples.jsonl" in err
    assert f"its evaluations: {run / 'eval' / 'step_0'}" in err
