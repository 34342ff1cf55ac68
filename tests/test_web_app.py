"""The web app: the page's pieces (fast), and the real page in a real browser (slow).

The slow test trains a tiny model with the toolkit's own SFT until it has learnt two generated
training rows by heart (~50 s), starts `python -m grit_exp.web_app` on 127.0.0.1, then drives Debian's
Chromium (Selenium + chromedriver): uploads the training image, asks its question, and checks the
rendered page shows the answer, the reasoning with numbered boxes, and a picture with those boxes
drawn where the gold boxes are, in the colours of their numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

import grit_exp.web_app  # noqa: F401  (the page's module imports without Gradio)
from grit_exp.grounded_answer import BOX_COLORS, GroundedAnswer, picture, reasoning_html
from grit_exp.grounding.frames import ImageGeometry
from tests.helpers.configs import compose_config
from tests.helpers.html_dom import parse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
COMPLETION = '<think> {"bbox_2d": [10, 10, 50, 40]} {"bbox_2d": [60, 20, 55, 30]} </think><rethink> r </rethink><answer> 2 </answer>'


def test_app_config_composes_for_the_web_app():
    cfg = compose_config("app", "server.port=0", "model.path=/ckpt")
    assert (cfg.server.host, cfg.server.port, cfg.model.path, cfg.prompt.name) == ("127.0.0.1", 0, "/ckpt", "grit")
    assert cfg.out is None and cfg.rollout.max_new_tokens == 1000  # image / question: infer's, left ???


def test_picture_and_reasoning_number_the_same_boxes(tmp_path):
    Image.new("RGB", (112, 112), (240, 240, 240)).save(tmp_path / "img.png")
    boxes = [{"original": [10.0, 10.0, 50.0, 40.0], "section": "think", "label": None},
             {"original": [60.0, 20.0, 55.0, 30.0], "section": "think", "label": "cat"}]
    geometry = ImageGeometry(family="qwen2_5_vl", orig_width=112, orig_height=112, input_width=112, input_height=112)
    result = GroundedAnswer(str(tmp_path / "img.png"), "q?", "q?", COMPLETION, "2", boxes, [(20, 36), (50, 66)], geometry)
    assert COMPLETION[20:36] == "[10, 10, 50, 40]" and COMPLETION[50:66] == "[60, 20, 55, 30]"
    page = parse(reasoning_html(result))
    tags = page.find_all("span", cls="tag")
    assert [t.text() for t in tags] == ["1", "2"] and "#e61414" in tags[0].attrs["style"]
    assert page.text() == COMPLETION.replace("[10,", "1[10,").replace("[60,", "2[60,")
    drawn = picture(tmp_path / "img.png", result).convert("RGB")
    assert drawn.width == 448 and drawn.height > 448  # 112 px shown at 448, legend band below
    assert drawn.getpixel((41, 100)) == BOX_COLORS[0]  # box 1's left edge, x 40..42 after scaling by 4
    assert drawn.getpixel((100, 100)) == (240, 240, 240)
    legend = [drawn.getpixel((x, y)) for x in range(0, 30) for y in range(448, drawn.height)]
    assert BOX_COLORS[0] in legend and BOX_COLORS[1] in legend  # box 2 encloses nothing: listed, not drawn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the web app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the web app did not answer at {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def memorising_checkpoint(tmp_path_factory, grit_cache, tiny_model_paths) -> tuple[Path, dict]:
    """A tiny Qwen2.5-VL trained by `grit_exp.train algorithm=sft` on 2 generated rows until it knows
    them by heart, and the training row with the most gold boxes."""
    run = tmp_path_factory.mktemp("sft_run")
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache)}
    cmd = [sys.executable, "-m", "grit_exp.train", "algorithm=sft", "dataset.synthetic.num_train=2",
           "dataset.synthetic.num_val=2", "trainer.max_steps=80", "trainer.prompts_per_step=4", "trainer.micro_batch_size=4",
           "trainer.learning_rate=3e-3", "trainer.eval_every=1000", "trainer.save_every=80", "trainer.eval_on_start=false",
           # the mixed questions (the CPU demo's data asks for red squares, which 2 rows may not have)
           "dataset.synthetic.kind_weights=[0.6,0.2,0.2]", "dataset.synthetic.count_targets=9",
           f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (data,) = [p.parent for p in (grit_cache / "synthetic").glob("*/params.json") if json.loads(p.read_text())["num_train"] == 2]
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text().splitlines()]
    row = max(rows, key=lambda r: len(r["bboxs"]))
    assert row["bboxs"], "the generated rows have no gold boxes"
    row["image"] = str(data / "images" / row["image"])
    return run / "checkpoints" / "step_80" / "model", row


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="needs Debian's chromium and chromium-driver (make install-browser)")
def test_web_app_in_a_real_browser(memorising_checkpoint, grit_cache, tmp_path):
    pytest.importorskip("gradio", reason="the web app's extra: pip install -e '.[web]'")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) drives the browser")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    checkpoint, row = memorising_checkpoint
    port = free_port()
    log = tmp_path / "web_app.log"
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache), "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "grit_exp.web_app", f"model.path={checkpoint}", f"server.port={port}",
             "rollout.max_new_tokens=128", f"hydra.run.dir={tmp_path / 'web_app_run'}"],
            cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    try:
        wait_for_server(url, proc, log)
        driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 120)
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#image-input input[type=file]")).send_keys(row["image"])
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#image-input img"))
            driver.find_element(By.CSS_SELECTOR, "#question-input textarea").send_keys(row["question"])
            driver.find_element(By.ID, "ask-button").click()
            answer = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#answer-output textarea").get_attribute("value"))
            assert answer.strip() == row["answer"]
            reasoning = driver.find_element(By.ID, "reasoning-output")
            tags = [t.text for t in reasoning.find_elements(By.CSS_SELECTOR, "span.tag")]
            assert tags == [str(i) for i in range(1, len(row["bboxs"]) + 1)]
            assert f"{len(row['bboxs'])} box(es), numbered" in reasoning.text
            src = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#boxes-picture img")).get_attribute("src")
            with urllib.request.urlopen(src, timeout=30) as response:
                shown = Image.open(BytesIO(response.read())).convert("RGB")
        finally:
            driver.quit()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    scale = 448 / max(row["width"], row["height"])
    assert shown.width == round(row["width"] * scale) and shown.height > round(row["height"] * scale)  # + legend
    for number, (x1, y1, _, y2) in enumerate(row["bboxs"][:2], start=1):
        left_edge = (round(x1 * scale) + 1, round((y1 + 0.8 * (y2 - y1)) * scale))
        assert shown.getpixel(left_edge) == BOX_COLORS[number - 1], f"box {number} not drawn at its gold place"
