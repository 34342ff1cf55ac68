"""Validation of one GRIT_data JSON object into a `GritRow`.

Checks every field the toolkit relies on and raises `DataError` naming ``file:line``, the field,
the bad value and what is valid: required fields and their types, boxes of four finite numbers
(x1 <= x2, y1 <= y2), the image file (exists, is an image whose header-read size equals
``width`` x ``height``), the optional structured ``gold`` chain. Numbers are kept as the file gives
them (an int stays an int). `check_image_folder` checks a whole file before its rows are read: its
image folder exists and holds at least one of the images its rows name (a set whose images were never
put in place fails at once, naming the folder and paths.data_root, instead of mid-run or as a table of
missing images; a few missing images stay a per-row matter). Deliberately left out: reading pixels (only PIL's header read),
checking that boxes lie inside the image (real annotations overhang by fractions of a pixel),
and any opinion about which datasets need boxes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from grit_exp.data.schema import GOLD_STYLES, Box, GoldChain, GritRow
from grit_exp.errors import DataError

REQUIRED_FIELDS = ("question", "answer", "image", "width", "height", "bboxs", "dataset")
KNOWN_FIELDS = (*REQUIRED_FIELDS, "split", "key_words", "gold")

_BOX_HELP = (
    "a box is a list of four numbers [x1, y1, x2, y2] in original-image pixels with x1 <= x2 and y1 <= y2"
)

# path -> ((mtime_ns, size), (width, height)); header reads only
_IMAGE_SIZE_CACHE: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_box(value: Any, *, what: str, location: str = "") -> Box:
    """Validate one [x1, y1, x2, y2] box; `what` names it in the error (e.g. "bboxs[2]")."""
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(_is_number(v) for v in value):
        raise DataError(f"{what} is {value!r}; {_BOX_HELP}", reason="bad_box", location=location)
    x1, y1, x2, y2 = value
    if x1 > x2 or y1 > y2:
        raise DataError(
            f"{what} is {list(value)!r}: x1 > x2 or y1 > y2; {_BOX_HELP}", reason="bad_box", location=location
        )
    return list(value)


def parse_box_string(text: str, *, what: str = "answer", location: str = "") -> Box | None:
    """The box of an OVD answer string "[x1, y1, x2, y2]", or None when the text is not a bracketed list.

    A non-empty bracketed list of numbers with other than four entries (e.g. "[1, 2, 3]") is an
    error, not a text answer; "[]" is text.
    """
    stripped = text.strip()
    if not (stripped.startswith("[") and stripped.endswith("]")):
        return None
    try:
        parsed = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or not parsed or not all(_is_number(v) for v in parsed):
        return None
    return parse_box(parsed, what=f"{what} {text!r}", location=location)


def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the image header (no pixel decoding); cached per path and modification."""
    stat = os.stat(path)
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _IMAGE_SIZE_CACHE.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    with Image.open(path) as image:
        size = (int(image.width), int(image.height))
    _IMAGE_SIZE_CACHE[path] = (stamp, size)
    return size


def image_names(file_path: Path) -> list[str]:
    """The ``image`` field of every line of a JSONL file that has one (other lines are the row checks' matter)."""
    names = []
    with file_path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                obj = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("image"), str):
                names.append(obj["image"])
    return names


def check_image_folder(file_path: str | Path, image_root: str | Path) -> None:
    """Raise `DataError` (reason ``missing_image_folder``) when the images of a data file are not where its rows
    say: its image folder does not exist, or it holds none of the images of a file whose rows name two or more.
    The message names the folder and the config key it hangs from (paths.data_root, GRIT_DATA_ROOT)."""
    if not Path(file_path).is_file():
        return  # the callers name a missing data file themselves
    root = Path(os.path.expanduser(str(image_root))).absolute()
    names = image_names(Path(file_path))
    if not names or (root.is_dir() and (len(names) < 2 or any((root / name).is_file() for name in names))):
        return
    problem = ("does not exist" if not root.is_dir()
               else f"holds none of the {len(names)} images its rows name (the first: {names[0]!r})")
    raise DataError(
        f"the images of {file_path} are not where its rows say: image folder {root} {problem}. The dataset "
        f"config's image_root is ${{paths.data_root}}/<set> (conf/dataset/*.yaml): set paths.data_root (or "
        f"GRIT_DATA_ROOT) to the GRIT_data folder and put each set's images in its folder (README 'Reproducing "
        "the paper's tables on a GPU node', step 1)",
        reason="missing_image_folder",
    )


def _require_str(obj: dict[str, Any], key: str, location: str, *, allow_int: bool = False) -> str:
    value = obj[key]
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        valid = "a string (or an integer)" if allow_int else "a string"
        raise DataError(
            f"field {key!r} is {value!r} ({type(value).__name__}); expected {valid}",
            reason="wrong_type",
            location=location,
        )
    return value


def _require_size(obj: dict[str, Any], key: str, location: str) -> int:
    value = obj[key]
    if _is_number(value) and float(value).is_integer() and value > 0:
        return int(value)
    raise DataError(
        f"field {key!r} is {value!r}; expected a positive integer number of pixels",
        reason="wrong_type",
        location=location,
    )


def parse_gold(value: Any, location: str) -> GoldChain:
    """Validate the optional ``gold`` object: {"boxes": [...], "labels": [...], "rethink": str, "answer": str}."""
    help_text = (
        'expected {"boxes": [[x1, y1, x2, y2], ...], "labels": [str, ...] (one per box, or []), '
        f'"rethink": str, "answer": str[, "style": one of {", ".join(GOLD_STYLES)}]}}'
    )
    keys = set(value) if isinstance(value, dict) else set()
    if not isinstance(value, dict) or not {"boxes", "labels", "rethink", "answer"} <= keys <= {
        "boxes", "labels", "rethink", "answer", "style"
    }:
        raise DataError(f"field 'gold' is {value!r}; {help_text}", reason="bad_gold", location=location)
    boxes_value, labels = value["boxes"], value["labels"]
    if not isinstance(boxes_value, list):
        raise DataError(f"gold.boxes is {boxes_value!r}; {help_text}", reason="bad_gold", location=location)
    boxes = [parse_box(b, what=f"gold.boxes[{i}]", location=location) for i, b in enumerate(boxes_value)]
    if (
        not isinstance(labels, list)
        or not all(isinstance(label, str) for label in labels)
        or (labels and len(labels) != len(boxes))
    ):
        raise DataError(
            f"gold.labels is {labels!r} for {len(boxes)} boxes; {help_text}",
            reason="bad_gold",
            location=location,
        )
    if not isinstance(value["rethink"], str) or not isinstance(value["answer"], str):
        raise DataError(
            f"gold.rethink / gold.answer must be strings; {help_text}", reason="bad_gold", location=location
        )
    style = value.get("style", "grit")
    if style not in GOLD_STYLES:
        raise DataError(f"gold.style is {style!r}; {help_text}", reason="bad_gold", location=location)
    return GoldChain(boxes=boxes, labels=list(labels), rethink=value["rethink"], answer=value["answer"], style=style)


def parse_row(
    obj: Any, *, image_root: str | Path, location: str, default_split: str = "train", require_image: bool = True
) -> GritRow:
    """Validate one decoded JSON object of a GRIT_data file; raise `DataError` naming `location`.

    `require_image=False` accepts a row whose image file is absent (the evaluation records and counts
    such rows); an image that is present is still checked (readable, size as declared)."""
    if not isinstance(obj, dict):
        raise DataError(
            f"expected a JSON object per line, got {type(obj).__name__}",
            reason="not_an_object",
            location=location,
        )
    missing = [key for key in REQUIRED_FIELDS if key not in obj]
    if missing:
        raise DataError(
            f"missing required field(s) {', '.join(map(repr, missing))}; every row needs "
            f"{', '.join(REQUIRED_FIELDS)}",
            reason="missing_field",
            location=location,
        )
    question = _require_str(obj, "question", location)
    if not question.strip():
        raise DataError("field 'question' is empty", reason="wrong_type", location=location)
    answer = _require_str(obj, "answer", location, allow_int=True)
    dataset = _require_str(obj, "dataset", location)
    image_rel = _require_str(obj, "image", location)
    width = _require_size(obj, "width", location)
    height = _require_size(obj, "height", location)
    split = _require_str(obj, "split", location) if "split" in obj else default_split

    if not isinstance(obj["bboxs"], list):
        raise DataError(
            f"field 'bboxs' is {obj['bboxs']!r}; expected a list of boxes ({_BOX_HELP})",
            reason="bad_box",
            location=location,
        )
    bboxs = [parse_box(b, what=f"bboxs[{i}]", location=location) for i, b in enumerate(obj["bboxs"])]
    answer_box = parse_box_string(answer, location=location)
    gold = parse_gold(obj["gold"], location) if "gold" in obj else None

    image_path = os.path.abspath(os.path.join(os.path.expanduser(str(image_root)), image_rel))
    image_present = os.path.isfile(image_path)
    if not image_present and require_image:
        raise DataError(
            f"image {image_rel!r} not found at {image_path} (image_root={str(image_root)!r})",
            reason="missing_image",
            location=location,
        )
    try:
        actual = image_size(image_path) if image_present else (width, height)
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(
            f"image {image_path} is not a readable image: {exc}", reason="unreadable_image", location=location
        ) from exc
    if actual != (width, height):
        raise DataError(
            f"width x height = {width} x {height} disagrees with the image {image_path}, which is "
            f"{actual[0]} x {actual[1]} pixels",
            reason="size_mismatch",
            location=location,
        )

    return GritRow(
        question=question,
        answer=answer,
        image=image_path,
        width=width,
        height=height,
        bboxs=bboxs,
        dataset=dataset,
        split=split,
        source=location,
        answer_box=answer_box,
        key_words=obj.get("key_words"),
        gold=gold,
        extra={key: value for key, value in obj.items() if key not in KNOWN_FIELDS},
    )
