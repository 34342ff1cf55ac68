"""The web app's zoom turns (issue #20): each crop inline beside its box on the original; nothing when zoom is off."""

from __future__ import annotations

import base64
import io

from PIL import Image

from grit_exp.evaluation.zoom_pictures import CROP_COLOR
from grit_exp.rollout.zoom.calls import ZoomCall
from grit_exp.web_app import zoom_turns_html
from tests.helpers.html_dom import parse


def test_zoom_turns_html(tmp_path):
    path = tmp_path / "scene.png"
    Image.new("RGB", (448, 448), (200, 200, 200)).save(path)
    calls = [ZoomCall(1, "<zoom>[1]</zoom>", None, None, "malformed box"),
             ZoomCall(2, "<zoom>[10, 10, 60, 60]</zoom>", (10.0, 10.0, 60.0, 60.0), (10, 10, 60, 60))]
    page = parse(zoom_turns_html(str(path), calls))
    images = page.find_all("img")
    assert [i.attrs["alt"] for i in images] == ["turn 2"]
    picture = Image.open(io.BytesIO(base64.b64decode(images[0].attrs["src"].split(",", 1)[1]))).convert("RGB")
    assert picture.getpixel((10, 30)) == CROP_COLOR  # the crop's box drawn on the original
    assert "text reply: malformed box" in page.text()
    assert zoom_turns_html(str(path), None) == ""
    assert "answered from the first view" in zoom_turns_html(str(path), [])


def test_the_answerer_hands_the_rollouts_zoom_calls_to_the_page(tmp_path, tiny_model_paths):
    """GroundedAnswer.zoom_calls is the rollout's list for the one completion with zoom on, None with it off."""
    from grit_exp.grounded_answer import GroundedAnswerer
    from tests.helpers.configs import compose_config

    path = tmp_path / "scene.png"
    Image.new("RGB", (150, 90), (200, 200, 200)).save(path)
    answers = {}
    for zoom in (False, True):
        cfg = compose_config("app", f"image={path}", "question=Why?", "rollout.max_new_tokens=8", "device=cpu",
                             f"rollout.zoom.enabled={str(zoom).lower()}")
        answers[zoom] = GroundedAnswerer(cfg).answer(str(path), "Why?")
    assert answers[False].zoom_calls is None
    assert isinstance(answers[True].zoom_calls, list)  # the random tiny model writes no call: an empty list
    assert answers[True].completion == answers[False].completion  # no call: the same greedy tokens
