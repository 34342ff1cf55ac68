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
