"""report.html and the pictures: they exist, show the boxes, and every text from data or model is escaped."""

from __future__ import annotations

import html
import json
from pathlib import Path

from eval_replay_fixture import replay_overrides
from PIL import Image

from grit_exp.evaluation.pictures import GT_COLOR, MODEL_COLOR
from grit_exp.evaluation.runner import run_evaluation

NASTY_QUESTION = 'Is the <script>alert("x")</script> & "cat" left?'
NASTY_COMPLETION = "<think> the <b>cat</b> [100, 100, 500, 900] & more </think><rethink> ok </rethink><answer>yes <i>sure</i></answer>"


def test_report_and_pictures(compose_eval, tmp_path):
    folder = tmp_path / "replay"
    folder.mkdir()
    Image.new("RGB", (64, 32), (90, 90, 90)).save(folder / "img.png")
    rows = [
        {"question": NASTY_QUESTION, "answer": "yes", "image": "img.png", "width": 64, "height": 32,
         "bboxs": [[30, 2, 60, 30]], "dataset": "vsr", "completion": NASTY_COMPLETION, "model_family": "internvl"},
        {"question": "Another one?", "answer": "no", "image": "gone.png", "width": 64, "height": 32,
         "bboxs": [], "dataset": "vsr", "completion": "<answer>no</answer>"},
    ]
    (folder / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    run_evaluation(compose_eval(*replay_overrides(folder / "replay.jsonl")), run)

    page = (run / "report.html").read_text()
    assert html.escape(NASTY_QUESTION) in page and "<script>" not in page
    assert html.escape(NASTY_COMPLETION) in page and "<b>cat</b>" not in page
    assert "&lt;think&gt;" in page and "data:image/png;base64," in page
    assert page.count('class="sample"') == 1  # the row without an image gets no picture
    assert "Answers judged by <b>rules</b>" in page and "decoding <b>replay</b>" in page

    pictures = sorted((run / "images").iterdir())
    assert [p.name for p in pictures] == ["sample_000000.png"]
    picture = Image.open(pictures[0]).convert("RGB")
    assert picture.size == (448, 224)  # 64 x 32 scaled by 7 to be readable
    # GT [30, 2, 60, 30] -> x 210..420 in the picture; InternVL [100, 100, 500, 900] of [0, 1000] -> original
    # x 6.4..32, y 3.2..28.8 -> picture x 44.8..224, y 22.4..201.6 (outlines drawn 3 px inwards)
    assert picture.getpixel((211, 100)) == GT_COLOR
    assert picture.getpixel((46, 100)) == MODEL_COLOR
    assert picture.getpixel((100, 100)) == (90, 90, 90)  # inside: only outlines are drawn
    assert Path(pictures[0]).stat().st_size > 100
