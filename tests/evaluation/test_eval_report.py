"""report.html and the pictures: structure of the page (parsed), failures first and listed with their
files, boxes numbered in the picture and in the text, a legend inside the picture, everything escaped."""

from __future__ import annotations

import html
import json
import shutil

import pytest
from eval_replay_fixture import replay_overrides
from PIL import Image

from grit_exp.evaluation.pictures import GT_COLOR, MODEL_COLOR, choose_pictured
from grit_exp.evaluation.runner import run_evaluation
from grit_exp.evaluation.samples import failure_kinds
from tests.helpers.html_dom import parse

NASTY_QUESTION = 'Is the <script>alert("x")</script> & "cat" left?'
NASTY_COMPLETION = "<think> the <b>cat</b> [100, 100, 500, 900] & more </think><rethink> ok </rethink><answer>yes</answer>"
WRONG = "<think> here [0, 0, 10, 10] and [20, 20, 30, 30] </think><rethink> two </rethink><answer>no</answer>"
NO_BOXES = "<think> nothing to point at </think><rethink> so </rethink><answer>yes</answer>"


def evaluate(tmp_path, compose_eval, *more: str):
    folder = tmp_path / "replay"
    folder.mkdir(parents=True)
    Image.new("RGB", (64, 32), (90, 90, 90)).save(folder / "img.png")
    base = {"answer": "yes", "image": "img.png", "width": 64, "height": 32, "bboxs": [[30, 2, 60, 30]], "dataset": "vsr"}
    rows = [
        {**base, "question": NASTY_QUESTION, "completion": NASTY_COMPLETION, "model_family": "internvl"},
        {**base, "question": "Another one?", "answer": "no", "image": "gone.png", "bboxs": [], "completion": "<answer>no</answer>"},
        {**base, "question": "Wrong one?", "completion": WRONG},
        {**base, "question": "No boxes?", "completion": NO_BOXES},
    ]
    (folder / "replay.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    run_evaluation(compose_eval(*replay_overrides(folder / "replay.jsonl"), *more), run)
    return run


def test_report_structure_failures_first_and_escaping(compose_eval, tmp_path):
    run = evaluate(tmp_path, compose_eval)
    text = (run / "report.html").read_text()
    assert html.escape(NASTY_QUESTION) in text and "<script>" not in text and "<b>cat</b>" not in text
    page = parse(text)
    headings = [h.text() for h in page.find_all("h2")]
    assert headings[0] == "Summary" and headings[1].startswith("Failures: 3 of 4 samples")
    assert headings[2].startswith("Samples: 3 pictured, failures first")

    summary = page.find("table", cls="summary")
    header = [th.text() for th in summary.find_all("tr")[0].find_all("th")]
    assert header[:5] == ["dataset", "n", "accuracy", "GIoU", "format"]
    (vsr,) = summary.find_all("tr")[1:]
    assert [c.text() for c in vsr.children[:3]] == ["vsr", "4", "0.7500"]  # 3 of 4 replayed answers right
    assert "1 missing image(s)" in vsr.text()
    meanings = {dt.text(): dd.text() for dt, dd in zip(page.find("dl").find_all("dt"), page.find("dl").find_all("dd"), strict=True)}
    assert set(meanings) >= {"n", "accuracy", "GIoU", "format"} and "union" in meanings["GIoU"]

    failures = page.find("table", cls="failures").find_all("tr")[1:]
    listed = [(row.children[0].text(), row.children[2].text(), row.children[3].text()) for row in failures]
    assert listed == [
        ("#1", "missing imageno boxes", str(tmp_path / "replay" / "gone.png")),  # replayed, so also scored
        ("#3", "no boxes", str(tmp_path / "replay" / "img.png")),
        ("#2", "wrong answer", str(tmp_path / "replay" / "img.png")),
    ]
    assert failures[1].find("a").attrs["href"] == "#sample-3"  # linked to its picture

    samples = page.find_all("div", cls="sample")
    assert [s.attrs["id"] for s in samples] == ["sample-3", "sample-2", "sample-0"]
    assert [("failed" in s.classes()) for s in samples] == [True, True, False]
    wrong = samples[1].find("pre", cls="completion")
    assert [t.text() for t in wrong.find_all("span", cls="tag")] == ["1", "2"]
    assert wrong.text() == WRONG.replace("[0, 0", "1[0, 0").replace("[20,", "2[20,")  # tags before the boxes
    rows = samples[1].find("table", cls="boxes").find_all("tr")[1:]
    assert [r.children[0].text() for r in rows] == ["1", "2"] and rows[1].children[2].text() == "[20, 20, 30, 30]"
    assert all(s.find("img").attrs["src"].startswith("data:image/png;base64,") for s in samples)


def test_picture_numbers_boxes_and_holds_a_legend(compose_eval, tmp_path):
    run = evaluate(tmp_path, compose_eval)
    picture = Image.open(run / "images" / "sample_000000.png").convert("RGB")
    assert picture.width == 448 and picture.height > 224  # 64 x 32 scaled by 7, plus the legend band
    # GT [30, 2, 60, 30] -> x 210..420; InternVL [100, 100, 500, 900] of [0, 1000] -> original
    # x 6.4..32, y 3.2..28.8 -> picture x 44.8..224, y 22.4..201.6 (outlines drawn 3 px inwards)
    assert picture.getpixel((211, 100)) == GT_COLOR
    assert picture.getpixel((46, 100)) == MODEL_COLOR
    assert picture.getpixel((100, 100)) == (90, 90, 90)  # inside: only outlines are drawn
    tag = [picture.getpixel((x, y)) for x in range(45, 60) for y in range(8, 22)]
    assert MODEL_COLOR in tag and any(min(p) > 200 for p in tag)  # the number's tag above the box: white on red
    legend = [picture.getpixel((x, y)) for x in range(0, 40) for y in range(224, picture.height)]
    assert GT_COLOR in legend and MODEL_COLOR in legend  # the legend's swatches, inside the PNG


def test_pictured_choice_takes_failures_and_successes():
    records = [{"index": i, "image_missing": False, "completion": "x", "answer_box": None,
                "metrics": {"acc": float(i % 4 == 0), "num_boxes": 1}} for i in range(40)]
    chosen = choose_pictured(records, 8, seed=0)
    assert chosen == sorted(chosen) and len(chosen) == 8
    assert sum(1 for i in chosen if failure_kinds(records[i])) == 4
    assert choose_pictured(records, 8, seed=0) == chosen


class Terminal:
    """stderr as a terminal: tqdm shows its bar only when the stream is a TTY."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_only(compose_eval, tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    evaluate(tmp_path / "tty", compose_eval)
    shown = "".join(terminal.parts)
    assert "eval" in shown and "4/4" in shown and "sample" in shown

    class Pipe(Terminal):
        def isatty(self) -> bool:
            return False

    pipe = Pipe()
    monkeypatch.setattr("sys.stderr", pipe)
    evaluate(tmp_path / "pipe", compose_eval)
    assert "4/4" not in "".join(pipe.parts)  # logs and CI: no bar


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None or shutil.which("chromedriver") is None,
                    reason="needs Debian's chromium and chromium-driver (make install-browser)")
def test_report_renders_in_a_real_browser(compose_eval, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev extra) drives the browser")
    from selenium.webdriver.common.by import By

    run = evaluate(tmp_path, compose_eval)
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,900"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")), options=options)
    try:
        driver.get((run / "report.html").as_uri())
        assert driver.title == "grit-exp evaluation"
        summary = driver.find_element(By.CSS_SELECTOR, "table.summary")
        assert summary.is_displayed() and summary.location["y"] < 400  # the summary is at the top
        images = driver.find_elements(By.CSS_SELECTOR, ".sample img")
        assert len(images) == 3
        assert all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", im) == 448
                   for im in images)  # the embedded pictures decode
        driver.find_element(By.CSS_SELECTOR, 'table.failures a[href="#sample-3"]').click()
        target = driver.find_element(By.ID, "sample-3")
        assert abs(driver.execute_script("return arguments[0].getBoundingClientRect().top", target)) < 5  # scrolled to it
        tags = target.find_elements(By.CSS_SELECTOR, "span.tag")
        assert tags == [] and "No boxes in the completion." in target.text
        driver.save_screenshot(str(tmp_path / "report.png"))
    finally:
        driver.quit()
