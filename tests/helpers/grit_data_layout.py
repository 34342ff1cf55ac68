"""Write a GRIT_data root laid out as the released dataset is (file and folder names, JSONL fields, image
folders), with a few generated images per split at the rows' width and height, for tests that walk the
README's command sequence (tests/test_paper_rehearsal.py).

The layout follows reference/grit.md section 6, conf/dataset/grit20.yaml / grit_eval.yaml and
grit_exp.data.download: the training files ``tallyqa_train_10.jsonl`` (images ``tallyqa/``, rows carry
``key_words``) and ``vsr_cot_train_10.jsonl`` (``vsr/``), the six eval files ``vsr_val``,
``tallyqa_val``, ``gqa_val``, ``mathvista_mini_val``, ``mme_val`` (datasets ``mme_count``,
``mme_position``, ``mme_existence``, ``mme_color``) and ``ovd_position_val`` (the box is the answer
string), each line ``{"question", "answer", "image", "width", "height", "bboxs", "dataset", "split"}``.
`write_public_annotations` writes VSR's and TallyQA's published training annotations (for
``python -m grit_exp.data.build vsr`` / ``tallyqa``), their images in the same folders.

What is cut: the row counts (10 training rows per file as released, `eval_rows` per eval file instead of
240 to ~2150) and the pixels (flat colours with a darker rectangle where the first box is). File names
follow the released naming (COCO 2017 ids for VSR, Visual Genome ids for TallyQA / GQA); which exact
images the released rows name is not reproduced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

TRAIN_FILES = {"tallyqa_train_10.jsonl": "tallyqa", "vsr_cot_train_10.jsonl": "vsr"}
EVAL_FILES = {  # file -> image folder, as conf/dataset/grit20.yaml names them
    "vsr_val.jsonl": "vsr",
    "tallyqa_val.jsonl": "tallyqa",
    "gqa_val.jsonl": "gqa",
    "mathvista_mini_val.jsonl": "mathvista_mini",
    "mme_val.jsonl": "mme",
    "ovd_position_val.jsonl": "ovd_position",
}
IMAGE_FOLDERS = sorted(set(TRAIN_FILES.values()) | set(EVAL_FILES.values()))
MME_SUBSETS = ("mme_count", "mme_position", "mme_existence", "mme_color")
SIZES = [(112, 84), (96, 112), (128, 96), (84, 84)]  # (width, height): landscape, portrait, square


def _image(path: Path, size: tuple[int, int], box: list[float] | None, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, (90 + shade % 120, 140, 200 - shade % 100))
    if box:
        ImageDraw.Draw(image).rectangle([int(v) for v in box], fill=(30, 30, 30))
    image.save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG")


def _box(size: tuple[int, int], k: int) -> list[float]:
    w, h = size
    x1, y1 = 4 + 3 * (k % 5), 6 + 2 * (k % 4)
    return [float(x1), float(y1), round(w * 0.6 + k % 3, 2), round(h * 0.7, 2)]


def _rows(kind: str, count: int, split: str, offset: int) -> list[tuple[dict[str, Any], tuple[int, int]]]:
    """(row without image fields, size) for `count` rows of one set."""
    out = []
    for k in range(count):
        size = SIZES[(k + offset) % len(SIZES)]
        box = _box(size, k)
        if kind == "tallyqa":
            n = k % 3
            row = {"question": f"How many dogs are in picture {k}?", "answer": str(n),
                   "bboxs": [_box(size, k + j) for j in range(n)], "dataset": "tallyqa", "key_words": "dogs"}
        elif kind == "vsr":
            row = {"question": f"What is across from the truck {k}?", "answer": "tv" if k % 2 else "car",
                   "bboxs": [box], "dataset": "vsr"}
        elif kind == "gqa":
            row = {"question": f"What is the animal on the left {k}?", "answer": "cat", "bboxs": [box], "dataset": "gqa"}
        elif kind == "mathvista_mini":
            row = {"question": f"What is the value of x in figure {k}?", "answer": str(3 + k), "bboxs": [],
                   "dataset": "mathvista"}
        elif kind == "mme":
            subset = MME_SUBSETS[k % len(MME_SUBSETS)]
            row = {"question": f"Is there a {subset.split('_')[1]} thing {k}? Please answer yes or no.",
                   "answer": "Yes" if k % 2 == 0 else "No", "bboxs": [], "dataset": subset}
        elif kind == "ovd_position":
            row = {"question": f"the dog on the left of the sofa {k}",
                   "answer": "[" + ", ".join(f"{v:g}" for v in box) + "]", "bboxs": [box], "dataset": "ovd_position"}
        else:
            raise ValueError(kind)
        row["split"] = split
        out.append((row, size))
    return out


def _image_name(folder: str, k: int, split: str) -> str:
    if folder == "vsr":  # COCO 2017 file names
        return f"{(410123 if split == 'train' else 296471) + 37 * k:012d}.jpg"
    if folder in ("tallyqa", "gqa"):  # Visual Genome ids
        return f"{(2385012 if split == 'train' else 2404450) + 11 * k + (7 if folder == 'gqa' else 0)}.jpg"
    if folder == "mme":
        return f"{k:04d}.png"
    if folder == "mathvista_mini":
        return f"{k + 1}.jpg"
    return f"ovd_{k:05d}.jpg"


def write_grit_data_root(root: Path, eval_rows: int = 2, train_rows: int = 10) -> Path:
    """Lay out a GRIT_data root at `root` (created); returns it. `eval_rows` per eval file (mme: at least one
    row per subset)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "README.md").write_text("GRIT_data (generated for a rehearsal; the layout of yfan1997/GRIT_data)\n")
    files = [(name, folder, "train", train_rows) for name, folder in TRAIN_FILES.items()]
    files += [(name, folder, "val", max(eval_rows, len(MME_SUBSETS)) if folder == "mme" else eval_rows)
              for name, folder in EVAL_FILES.items()]
    for index, (name, folder, split, count) in enumerate(files):
        lines = []
        for k, (row, size) in enumerate(_rows(folder, count, split, index)):
            image = _image_name(folder, k, split)
            _image(root / folder / image, size, (row["bboxs"] or [None])[0], 17 * k + index)
            ordered = {"question": row.pop("question"), "answer": row.pop("answer"), "image": image,
                       "width": size[0], "height": size[1], "bboxs": row.pop("bboxs"), "dataset": row.pop("dataset"),
                       **row}
            lines.append(json.dumps(ordered))
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def write_public_annotations(root: Path, public: Path, vsr_rows: int = 12, tallyqa_rows: int = 12) -> dict[str, Path]:
    """The public files that ``python -m grit_exp.data.build vsr`` / ``tallyqa`` read, in their published layouts,
    under `public`: VSR's ``data/splits/random/train.jsonl``, COCO's ``annotations/instances_train2017.json``
    (sizes and boxes of the VSR images), TallyQA's ``train.json`` and Visual Genome's ``image_data.json``
    (sizes). Their images go into the GRIT_data root's image folders (vsr/ for COCO files, tallyqa/VG_100K_2/
    for Visual Genome files). Returns {"vsr", "coco_instances", "tallyqa", "vg_image_data": path}."""
    relations = [("cat", "inside", "refrigerator"), ("dog", "left of", "couch"), ("cup", "on", "table")]
    categories = sorted({name for subj, _, obj in relations for name in (subj, obj)})
    category_id = {name: i + 1 for i, name in enumerate(categories)}
    vsr_lines, coco_images, coco_annotations = [], [], []
    for k in range(vsr_rows):
        image, size = f"{500000 + 13 * k:012d}.jpg", SIZES[k % len(SIZES)]
        _image(root / "vsr" / image, size, None, 5 * k)
        subj, relation, obj = relations[k % len(relations)]
        vsr_lines.append(json.dumps({
            "image": image, "image_link": f"http://images.cocodataset.org/train2017/{image}",
            "caption": f"The {subj} is {relation} the {obj}.", "label": k % 2, "relation": relation,
            "annotator_id": k, "vote_true_validator_id": "[]", "vote_false_validator_id": "[]"}))
        coco_images.append({"id": 500000 + k, "file_name": image, "width": size[0], "height": size[1]})
        for j, name in enumerate((subj, obj)):
            coco_annotations.append({"id": 10 * k + j, "image_id": 500000 + k, "category_id": category_id[name],
                                     "bbox": [2.0 + 10 * j, 3.0, 20.0, 15.5], "iscrowd": 0, "area": 310.0})
    tally, vg = [], []
    for k in range(tallyqa_rows):
        image, size = f"VG_100K_2/{2410408 + k}.jpg", SIZES[(k + 1) % len(SIZES)]
        _image(root / "tallyqa" / image, size, None, 7 * k)
        tally.append({"answer": k % 4, "data_source": "imported_genome", "image": image, "image_id": 92410408 + k,
                      "issimple": bool(k % 2), "question": f"How many birds are there {k}?", "question_id": 30095774 + k})
        vg.append({"image_id": 2410408 + k, "width": size[0], "height": size[1], "coco_id": None, "flickr_id": None,
                   "url": f"https://cs.stanford.edu/people/rak248/{image}"})
    paths = {"vsr": public / "vsr" / "data" / "splits" / "random" / "train.jsonl",
             "coco_instances": public / "coco" / "annotations" / "instances_train2017.json",
             "tallyqa": public / "tallyqa" / "train.json", "vg_image_data": public / "vg" / "image_data.json"}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    paths["vsr"].write_text("\n".join(vsr_lines) + "\n")
    paths["coco_instances"].write_text(json.dumps({"images": coco_images, "annotations": coco_annotations,
        "categories": [{"id": category_id[name], "name": name} for name in categories]}))
    paths["tallyqa"].write_text(json.dumps(tally))
    paths["vg_image_data"].write_text(json.dumps(vg))
    return paths
