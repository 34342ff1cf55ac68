"""The VSR / TallyQA converters and the 20-VSR file, on files written here in the published layouts (no download).

VSR: data/splits/random/train.jsonl lines as cambridgeltl/visual-spatial-reasoning publishes them (validator
ids as strings, reference_frame); COCO: instances_*.json (images / annotations / categories, bbox [x, y, w, h]);
TallyQA: train.json, one list; Visual Genome: image_data.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.data.public_formats import CocoIndex, split_vsr_caption, tallyqa_rows, vsr_question, vsr_rows
from grit_exp.data.reader import load_rows
from grit_exp.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def vsr_line(image: str, caption: str, label: int, relation: str) -> str:
    return json.dumps({"image": image, "image_link": f"http://images.cocodataset.org/train2017/{image}",
                       "caption": caption, "label": label, "relation": relation, "annotator_id": 27,
                       "vote_true_validator_id": "[]", "vote_false_validator_id": "[1, 2, 20]",
                       "reference_frame": None})


def coco_instances(path: Path) -> Path:
    path.write_text(json.dumps({
        "images": [{"id": 296471, "file_name": "000000296471.jpg", "width": 640, "height": 480},
                   {"id": 391632, "file_name": "000000391632.jpg", "width": 500, "height": 375}],
        "annotations": [
            {"id": 1, "image_id": 296471, "category_id": 17, "bbox": [10.5, 20, 100, 50], "iscrowd": 0, "area": 1},
            {"id": 2, "image_id": 296471, "category_id": 82, "bbox": [200, 100, 150, 300], "iscrowd": 0, "area": 1},
            {"id": 3, "image_id": 296471, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0, "area": 1},
            {"id": 4, "image_id": 296471, "category_id": 17, "bbox": [1, 1, 5, 5], "iscrowd": 1, "area": 1},
            {"id": 5, "image_id": 391632, "category_id": 33, "bbox": [5, 5, 20, 20], "iscrowd": 0, "area": 1}],
        "categories": [{"id": 1, "name": "person", "supercategory": "person"},
                       {"id": 17, "name": "cat", "supercategory": "animal"},
                       {"id": 33, "name": "suitcase", "supercategory": "accessory"},
                       {"id": 82, "name": "refrigerator", "supercategory": "appliance"}],
    }))
    return path


def test_vsr_captions_become_yes_no_questions():
    assert split_vsr_caption("The dining table is near the person.", "near") == ("dining table", "person")
    assert split_vsr_caption("The suitcase contains the cat.", "contains") == ("suitcase", "cat")
    assert vsr_question("The cat is inside the refrigerator.", "inside", "cat", "refrigerator") == \
        "Is the cat inside the refrigerator?"
    assert vsr_question("The suitcase contains the cat.", "contains", "suitcase", "cat") == \
        "Does the suitcase contain the cat?"
    assert vsr_question("The car has as a part the wheel.", "has as a part", "car", "wheel") == \
        "Does the car have as a part the wheel?"


def test_vsr_rows_take_sizes_and_boxes_from_coco_and_read_back(tmp_path):
    ann = tmp_path / "train.jsonl"
    ann.write_text(vsr_line("000000296471.jpg", "The cat is inside the refrigerator.", 0, "inside") + "\n\n"
                   + vsr_line("000000391632.jpg", "The suitcase contains the cat.", 1, "contains") + "\n")
    rows = vsr_rows(ann, image_root=tmp_path / "vsr", coco=CocoIndex([coco_instances(tmp_path / "inst.json")]))
    assert rows[0] == {"question": "Is the cat inside the refrigerator?", "answer": "no", "image": "000000296471.jpg",
                       "width": 640, "height": 480, "bboxs": [[10.5, 20, 110.5, 70], [200, 100, 350, 400]],
                       "dataset": "vsr", "split": "train", "caption": "The cat is inside the refrigerator.",
                       "relation": "inside"}  # the crowd box and the person are left out
    assert rows[1]["answer"] == "yes" and rows[1]["bboxs"] == [[5, 5, 25, 25]]  # no cat instance: the suitcase only
    # the written rows are valid GRIT_data rows for the reader (images of the declared size present)
    (tmp_path / "vsr").mkdir()
    Image.new("RGB", (640, 480)).save(tmp_path / "vsr" / "000000296471.jpg")
    Image.new("RGB", (500, 375)).save(tmp_path / "vsr" / "000000391632.jpg")
    out = tmp_path / "vsr_train.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    read = load_rows([{"path": str(out), "image_root": str(tmp_path / "vsr")}])
    assert [r.answer for r in read] == ["no", "yes"] and read[0].extra["relation"] == "inside"


def test_vsr_without_coco_reads_the_size_from_the_image_and_has_no_boxes(tmp_path):
    ann = tmp_path / "train.jsonl"
    ann.write_text(vsr_line("000000296471.jpg", "The cat is inside the refrigerator.", 1, "inside") + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:1: no size for image '000000296471.jpg'.*--coco-instances"):
        vsr_rows(ann, image_root=tmp_path)
    Image.new("RGB", (64, 48)).save(tmp_path / "000000296471.jpg")
    (row,) = vsr_rows(ann, image_root=tmp_path)
    assert (row["width"], row["height"], row["bboxs"], row["answer"]) == (64, 48, [], "yes")
    ann.write_text(json.dumps({"image": "x.jpg", "caption": "c"}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:1: missing field\(s\) label, relation"):
        vsr_rows(ann, image_root=tmp_path)


def test_tallyqa_rows_from_train_json(tmp_path):
    ann = tmp_path / "train.json"
    ann.write_text(json.dumps([
        {"answer": 4, "data_source": "imported_genome", "image": "VG_100K_2/2410408.jpg", "image_id": 92410408,
         "issimple": False, "question": "How many headlights does the black bus have?", "question_id": 30095774},
        {"answer": 0, "data_source": "amt", "image": "VG_100K/2345.jpg", "image_id": 2345, "issimple": True,
         "question": "How many dogs are there?", "question_id": 30000001}]))
    image_data = tmp_path / "image_data.json"
    image_data.write_text(json.dumps([{"image_id": 2410408, "width": 800, "height": 600, "url": "u"},
                                      {"image_id": 2345, "width": 500, "height": 333, "url": "u"}]))
    sizes = {str(e["image_id"]): (e["width"], e["height"]) for e in json.loads(image_data.read_text())}
    rows = tallyqa_rows(ann, image_root=tmp_path, sizes=sizes)
    assert rows[0] == {"question": "How many headlights does the black bus have?", "answer": "4",
                       "image": "VG_100K_2/2410408.jpg", "width": 800, "height": 600, "bboxs": [],
                       "dataset": "tallyqa", "split": "train", "issimple": False, "data_source": "imported_genome",
                       "question_id": 30095774}
    assert rows[1]["answer"] == "0"
    ann.write_text('{"not": "a list"}')
    with pytest.raises(DataError, match="one JSON list"):
        tallyqa_rows(ann, image_root=tmp_path)


def test_build_vsr_pool_then_vsr20_excludes_base_and_val_images(tmp_path):
    root = tmp_path / "GRIT_data"
    (root / "vsr").mkdir(parents=True)
    base = [{"question": f"What is left of the thing {i}?", "answer": "cat", "image": f"base{i}.jpg", "width": 64,
             "height": 48, "bboxs": [[1, 1, 9, 9]], "dataset": "vsr", "split": "train"} for i in range(10)]
    (root / "vsr_cot_train_10.jsonl").write_text("".join(json.dumps(r) + "\n" for r in base))
    (root / "vsr_val.jsonl").write_text(json.dumps({**base[0], "image": "val0.jpg", "split": "val"}) + "\n")
    images = [f"base{i}.jpg" for i in range(3)] + ["val0.jpg"] + [f"new{i}.jpg" for i in range(12)]
    ann = tmp_path / "train.jsonl"
    ann.write_text("".join(vsr_line(im, "The cat is near the dog.", i % 2, "near") + "\n" for i, im in enumerate(images)))
    for im in images:
        Image.new("RGB", (32, 24)).save(root / "vsr" / im)
    build = [sys.executable, "-m", "grit_exp.data.build"]
    done = subprocess.run([*build, "vsr", "--root", str(root), "--annotations", str(ann)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "vsr_train.jsonl.built.json").read_text())["rows"] == 16
    done = subprocess.run([*build, "vsr20", "--root", str(root), "--seed", "3"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (root / "vsr_train_20.jsonl").read_text().splitlines()]
    assert len(rows) == 20 and rows[:10] == base
    assert all(r["image"].startswith("new") for r in rows[10:])  # never a base or a vsr_val image
    again = subprocess.run([*build, "vsr20", "--root", str(root), "--seed", "3"], cwd=ROOT, capture_output=True,
                           timeout=120)
    assert again.returncode == 0 and [json.loads(x) for x in (root / "vsr_train_20.jsonl").read_text().splitlines()] == rows
    # the reader takes the drawn rows as they are (the base rows' 64 x 48 images are not laid out here: skipped)
    read = load_rows([{"path": str(root / "vsr_train_20.jsonl"), "image_root": str(root / "vsr")}], on_error="skip")
    assert [r.image for r in read] == [str(root / "vsr" / r["image"]) for r in rows[10:]]
    short = subprocess.run([*build, "vsr20", "--root", str(root), "--pool", str(root / "vsr_val.jsonl")], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert short.returncode == 2 and "10 are needed" in short.stderr
