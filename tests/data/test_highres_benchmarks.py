"""Readers of V* Bench and HR-Bench (issue #20), on files generated here in the published layouts: the rows
the evaluation reads through conf/dataset/{vstar_bench,hr_bench}.yaml, and one-line errors naming the
file (and TSV line) for bad samples."""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.data.highres_benchmarks import hrbench_rows, main, vstar_rows
from grit_exp.errors import DataError
from grit_exp.evaluation.items import load_eval_items
from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]


def write_vstar(bench: Path) -> None:
    """Two samples per folder, as craigwu/vstar_bench lays them out."""
    for folder, names in (("direct_attributes", ("sa_1", "sa_2")), ("relative_position", ("sa_3", "sa_4"))):
        (bench / folder).mkdir(parents=True)
        for k, name in enumerate(names):
            Image.new("RGB", (640 + k, 480), (90, 90, 90)).save(bench / folder / f"{name}.jpg")
            (bench / folder / f"{name}.json").write_text(json.dumps({
                "target_object": ["glove"], "bbox": [[100, 50, 20, 10]],
                "question": f"What is the color of the glove {name}?",
                "options": ["red", "blue", "green", "white"]}))


def write_hrbench(path: Path, rows: list[dict[str, str]] | None = None) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), (10, 200, 10)).save(buffer, format="JPEG")
    image = base64.b64encode(buffer.getvalue()).decode()
    rows = rows or [
        {"index": "0", "question": "What is written on the sign?", "answer": "C", "category": "single",
         "cycle_category": "0_single", "image": image, "A": "STOP", "B": "GO", "C": "EXIT", "D": "OPEN"},
        {"index": "1", "question": "Which is left of the car?", "answer": "A", "category": "cross",
         "cycle_category": "1_cross", "image": image, "A": "a tree", "B": "a dog", "C": "a man", "D": "a bus"},
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def test_vstar_rows_and_evaluation_items(tmp_path):
    write_vstar(tmp_path / "vstar_bench")
    rows = vstar_rows(tmp_path / "vstar_bench")
    assert [r["dataset"] for r in rows] == ["vstar_direct_attributes"] * 2 + ["vstar_relative_position"] * 2
    first = rows[0]
    assert first["bboxs"] == [[100.0, 50.0, 120.0, 60.0]]  # [x, y, w, h] -> [x1, y1, x2, y2]
    assert (first["width"], first["height"], first["image"]) == (640, 480, "direct_attributes/sa_1.jpg")
    letter = first["answer_letter"]
    assert first["answer"] == f"{letter}. red" and f"\n{letter}. red" in first["question"]
    assert first["question"].startswith("What is the color of the glove sa_1?\nOptions:\nA. ")
    assert rows == vstar_rows(tmp_path / "vstar_bench")  # seeded option order
    assert len({r["answer_letter"] for r in rows}) > 1  # not always A
    published = vstar_rows(tmp_path / "vstar_bench", option_order="as_published")
    assert all(r["answer"] == "A. red" for r in published)

    assert main(["vstar", "--bench", str(tmp_path / "vstar_bench"), "--root", str(tmp_path)]) == 0
    cfg = compose_config("eval", "dataset=vstar_bench", f"paths.data_root={tmp_path}")
    items, skipped = load_eval_items(cfg.dataset, 0)
    assert skipped.total == 0 and len(items) == 4
    assert items[0].row.image == str(tmp_path / "vstar_bench" / "direct_attributes" / "sa_1.jpg")
    assert items[0].row.bboxs == [[100.0, 50.0, 120.0, 60.0]] and items[0].row.dataset == "vstar_direct_attributes"


def test_hrbench_rows_images_and_evaluation_items(tmp_path):
    for size in ("4k", "8k"):
        write_hrbench(tmp_path / f"hr_bench_{size}.tsv")
        assert main(["hrbench", "--tsv", str(tmp_path / f"hr_bench_{size}.tsv"), "--root", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "hr_bench_4k.jsonl").read_text().splitlines()]
    assert [r["dataset"] for r in rows] == ["hrbench_4k_single", "hrbench_4k_cross"]
    assert rows[0]["answer"] == "C. EXIT" and rows[0]["question"].endswith("C. EXIT\nD. OPEN")
    assert (rows[0]["image"], rows[0]["width"], rows[0]["height"], rows[0]["bboxs"]) == ("0.jpg", 800, 600, [])
    assert Image.open(tmp_path / "hr_bench_4k" / "0.jpg").size == (800, 600)
    # converting again is allowed (the toolkit wrote the files); the images are the same bytes
    assert main(["hrbench", "--tsv", str(tmp_path / "hr_bench_4k.tsv"), "--root", str(tmp_path)]) == 0
    cfg = compose_config("eval", "dataset=hr_bench", f"paths.data_root={tmp_path}")
    items, _ = load_eval_items(cfg.dataset, 0)
    assert [i.set_name for i in items] == ["hr_bench_4k"] * 2 + ["hr_bench_8k"] * 2
    assert items[3].row.dataset == "hrbench_8k_cross" and items[3].row.answer == "A. a tree"


def test_bad_samples_name_the_file(tmp_path):
    write_vstar(tmp_path / "v")
    bad = tmp_path / "v" / "relative_position" / "sa_4.json"
    bad.write_text(json.dumps({"question": "q", "options": ["a"], "bbox": [[1, 2, 0, 5]]}))
    with pytest.raises(DataError, match=rf"{bad}: bbox \[1, 2, 0, 5\] is not \[x, y, width, height\]"):
        vstar_rows(tmp_path / "v")
    bad.write_text(json.dumps({"question": "q", "bbox": []}))
    with pytest.raises(DataError, match=rf"{bad}: missing field\(s\) options"):
        vstar_rows(tmp_path / "v")
    bad.write_text("{oops")
    with pytest.raises(DataError, match=rf"{bad}:1: malformed JSON"):
        vstar_rows(tmp_path / "v")

    tsv = tmp_path / "hr_bench_4k.tsv"
    row = {"index": "0", "question": "q", "answer": "E", "category": "single", "cycle_category": "c",
           "image": "aGVsbG8=", "A": "a", "B": "b", "C": "c", "D": "d"}
    write_hrbench(tsv, [dict(row, answer="A", image=base64.b64encode(b"\x89PNG junk").decode()), row])
    with pytest.raises(DataError, match=rf"{tsv}:2: column image does not decode"):
        hrbench_rows(tsv, tmp_path / "img")
    write_hrbench(tsv, [row])
    with pytest.raises(DataError, match=rf"{tsv}:2: answer 'E' is not an option letter A-D"):
        hrbench_rows(tsv, tmp_path / "img")
    # the command says it in one line and exits 2
    out = subprocess.run([sys.executable, "-m", "grit_exp.data.highres_benchmarks", "hrbench", "--tsv", str(tsv),
                          "--root", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "not an option letter" in out.stderr
