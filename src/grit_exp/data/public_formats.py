"""Converters from the public VSR and TallyQA training annotations to GRIT_data rows (the data-scaling pools).

Published layouts read here (nothing is downloaded):

- VSR (github.com/cambridgeltl/visual-spatial-reasoning, ``data/splits/{random,zeroshot}/train.jsonl``):
  one JSON object per line, ``{"image": "000000296471.jpg", "image_link": ..., "caption": "The cat is
  inside the refrigerator.", "label": 0|1, "relation": "inside", "annotator_id": ...,
  "vote_true_validator_id": "[...]", "vote_false_validator_id": "[...]", "reference_frame": ...}``
  (later releases add ``subj`` / ``obj``). Images are COCO 2017 train/val files.
- TallyQA (github.com/manoja328/TallyQA_dataset, ``train.json``): ONE JSON list of
  ``{"answer": 4, "data_source": "imported_genome", "image": "VG_100K_2/2410408.jpg", "image_id": 92410408,
  "issimple": false, "question": "How many ...?", "question_id": 30095774}``. Images are Visual Genome /
  COCO files under the image folder.

What each converter fills, and what it cannot:

- VSR -> question "Is the <subj> <relation> the <obj>?" (or "Does the <subj> <verb> the <obj>?" for verb
  relations such as "contains"), answer "yes"/"no" from ``label``; ``dataset`` "vsr". VSR's annotation
  has NO boxes and no image size: with COCO's ``instances_*.json`` (``--coco-instances``) the rows get
  the size and the boxes of every non-crowd instance of the subject's and the object's COCO category
  (COCO [x, y, w, h] -> [x1, y1, x2, y2]); without it the size is read from the image file and
  ``bboxs`` is empty. GRIT_data's own VSR rows are open questions ("What is across from the truck?");
  these are VSR's true/false form as yes/no questions: the same images and relations, another wording.
- TallyQA -> question and answer as given (answer as a string); ``dataset`` "tallyqa"; ``issimple``,
  ``data_source``, ``question_id`` kept as extra fields. TallyQA has NO boxes (``bboxs`` is empty:
  GRIT training does not need them, r_count compares the number of predicted boxes with the answer)
  and no ``key_words``; the size comes from Visual Genome's ``image_data.json`` (``--vg-image-data``,
  matched by the file name's number) or else from the image file.

Left out: downloads, Visual Genome object matching (which VG boxes a counting question counts is not
recorded anywhere), and GQA / MME / MathVista (evaluation only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from grit_exp.data.derived import read_objects
from grit_exp.data.validation import image_size
from grit_exp.errors import DataError

VSR_FIELDS = ("image", "caption", "label", "relation")
TALLYQA_FIELDS = ("image", "question", "answer")


def _require(obj: Any, fields: tuple[str, ...], location: str, layout: str) -> None:
    if not isinstance(obj, dict) or any(k not in obj for k in fields):
        missing = [k for k in fields if not isinstance(obj, dict) or k not in obj]
        raise DataError(f"missing field(s) {', '.join(missing)}; expected the published {layout} layout",
                        reason="missing_field", location=location)


def _size_from_file(image_root: Path, image: str, location: str, hint: str) -> tuple[int, int]:
    path = image_root / image
    if not path.is_file():
        raise DataError(f"no size for image {image!r}: {path} does not exist; {hint}",
                        reason="missing_image", location=location)
    return image_size(str(path))


def split_vsr_caption(caption: str, relation: str) -> tuple[str, str]:
    """("cat", "refrigerator") from "The cat is inside the refrigerator." with relation "inside"."""
    match = re.fullmatch(rf"The (?P<subj>.+?) (?:is )?{re.escape(relation)} the (?P<obj>.+?)\.?", caption.strip())
    if match is None:
        raise ValueError(f"caption {caption!r} is not 'The <subj> [is] {relation} the <obj>.'")
    return match["subj"], match["obj"]


def vsr_question(caption: str, relation: str, subj: str, obj: str) -> str:
    """The yes/no question of a VSR caption: "Is the cat inside the refrigerator?", "Does the suitcase contain the cat?"."""
    if f" is {relation} " in caption:
        return f"Is the {subj} {relation} the {obj}?"
    verb, *rest = relation.split(" ")
    verb = "have" if verb == "has" else verb.removesuffix("s")
    return f"Does the {subj} {' '.join([verb, *rest])} the {obj}?"


class CocoIndex:
    """Image sizes and instance boxes by file name, from COCO ``instances_*.json`` files."""

    def __init__(self, files: list[Path]):
        self.images: dict[str, tuple[int, int, int]] = {}  # file_name -> (id, width, height)
        self.boxes: dict[int, list[tuple[str, list[float]]]] = {}  # image id -> [(category name, xyxy)]
        for path in files:
            data = json.loads(Path(path).read_text())
            names = {c["id"]: c["name"] for c in data["categories"]}
            for image in data["images"]:
                self.images[image["file_name"]] = (image["id"], image["width"], image["height"])
            for ann in data["annotations"]:
                if ann.get("iscrowd", 0):
                    continue
                x, y, w, h = ann["bbox"]
                self.boxes.setdefault(ann["image_id"], []).append((names[ann["category_id"]], [x, y, x + w, y + h]))

    def lookup(self, file_name: str, categories: tuple[str, ...]) -> tuple[int, int, list[list[float]]] | None:
        """(width, height, boxes of `categories` in that order) or None when the image is not indexed."""
        if file_name not in self.images:
            return None
        image_id, width, height = self.images[file_name]
        anns = self.boxes.get(image_id, [])
        return width, height, [box for name in categories for cat, box in anns if cat == name]


def vsr_rows(annotations: Path, *, image_root: Path, coco: CocoIndex | None = None,
             split: str = "train") -> list[dict[str, Any]]:
    """GRIT_data rows from a VSR split file (see the module docstring for what is filled)."""
    rows = []
    for location, obj in read_objects(Path(annotations)):  # VSR files hold one object per line
        _require(obj, VSR_FIELDS, location, "VSR jsonl")
        caption, relation = str(obj["caption"]), str(obj["relation"])
        try:
            subj, obj_name = (obj["subj"], obj["obj"]) if "subj" in obj and "obj" in obj else split_vsr_caption(
                caption, relation)
        except ValueError as exc:
            raise DataError(str(exc), reason="wrong_type", location=location) from exc
        found = coco.lookup(obj["image"], (subj, obj_name)) if coco is not None else None
        if found is None:
            width, height = _size_from_file(image_root, obj["image"], location,
                                            "pass COCO's instances_*.json (--coco-instances) or put the COCO images there")
            boxes: list[list[float]] = []
        else:
            width, height, boxes = found
        rows.append({
            "question": vsr_question(caption, relation, subj, obj_name),
            "answer": "yes" if int(obj["label"]) == 1 else "no",
            "image": obj["image"], "width": width, "height": height, "bboxs": boxes,
            "dataset": "vsr", "split": split, "caption": caption, "relation": relation,
        })
    return rows


def vg_sizes(image_data: Path) -> dict[str, tuple[int, int]]:
    """Visual Genome ``image_data.json`` -> {"2410408": (width, height)} (keyed by the image file's number)."""
    return {str(e["image_id"]): (e["width"], e["height"]) for e in json.loads(Path(image_data).read_text())}


def tallyqa_rows(annotations: Path, *, image_root: Path, sizes: dict[str, tuple[int, int]] | None = None,
                 split: str = "train") -> list[dict[str, Any]]:
    """GRIT_data rows from a TallyQA ``train.json`` / ``test.json`` (see the module docstring)."""
    try:
        entries = json.loads(Path(annotations).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg} at line {exc.lineno}); TallyQA's train.json is one JSON list",
                        reason="malformed_json", location=str(annotations)) from exc
    if not isinstance(entries, list):
        raise DataError("expected one JSON list of questions (TallyQA's train.json layout)",
                        reason="not_an_object", location=str(annotations))
    rows = []
    for index, obj in enumerate(entries):
        location = f"{annotations}[{index}]"
        _require(obj, TALLYQA_FIELDS, location, "TallyQA train.json")
        image = str(obj["image"])
        size = (sizes or {}).get(Path(image).stem)
        if size is None:
            size = _size_from_file(image_root, image, location,
                                   "pass Visual Genome's image_data.json (--vg-image-data) or put the images there")
        extra = {k: obj[k] for k in ("issimple", "data_source", "question_id") if k in obj}
        rows.append({"question": str(obj["question"]), "answer": str(obj["answer"]), "image": image,
                     "width": size[0], "height": size[1], "bboxs": [], "dataset": "tallyqa", "split": split, **extra})
    return rows
