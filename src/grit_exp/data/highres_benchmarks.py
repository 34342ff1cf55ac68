"""Readers of the public high-resolution benchmarks of the "thinking with images" line of work (issue #20),
turned into GRIT_data rows that the evaluation reads like any other eval file.

    python -m grit_exp.data.highres_benchmarks vstar --bench DIR --root DIR      # -> DIR/vstar_bench.jsonl
    python -m grit_exp.data.highres_benchmarks hrbench --tsv FILE --root DIR     # -> DIR/hr_bench_4k.jsonl + images

Published layouts read here (nothing is downloaded):

- V* Bench (Hugging Face dataset craigwu/vstar_bench; read so by penghao-wu/vstar's vstar_bench_eval.py
  and DeepEyes' eval/eval_vstar.py): two folders, ``direct_attributes/`` and ``relative_position/``, each
  holding per sample an image (``sa_4690.jpg``) and its annotation beside it (``sa_4690.json``):
  ``{"target_object": ["glove", ...], "bbox": [[x, y, w, h], ...], "question": "...", "options": ["...", ...]}``
  where ``options[0]`` is the right answer and each bbox is [x, y, width, height] in image pixels.
  Rows: ``dataset`` ``vstar_direct_attributes`` / ``vstar_relative_position``; ``bboxs`` the target boxes as
  [x1, y1, x2, y2]; the question followed by the lettered options; ``answer`` "<letter>. <option>" of the
  right one; the options are put in a seeded order per sample (`option_order: seeded`), or as published
  (`as_published`: the right answer is always A, as DeepEyes' evaluation prompts it).
- HR-Bench (Hugging Face dataset DreamMr/HR-Bench; read so by lmms-eval's and VLMEvalKit's hrbench tasks):
  one TSV per resolution, ``hr_bench_4k.tsv`` / ``hr_bench_8k.tsv``, with a header and the columns
  ``index, question, answer, category, cycle_category, image, A, B, C, D``: ``image`` is the image file
  base64-encoded, ``answer`` the right option's letter, ``category`` ``single`` or ``cross``. The images
  are decoded into ``<root>/<tsv stem>/<index>.<ext>`` (the toolkit's folder; an existing file with other
  bytes is never replaced). Rows: ``dataset`` ``hrbench_4k_single`` etc.; no boxes (HR-Bench has none); the
  question followed by the lettered options; ``answer`` "<letter>. <option>". The options keep their order.

A bad sample (missing field, options that are not a list of strings, a bbox that is not [x, y, w, h],
an answer letter without its option, an image that does not decode) is a `DataError` naming the file
(and TSV line). The rows keep ``answer_letter`` and the benchmark's own fields as extra fields.

Left out: downloads, the benchmarks' own scoring (multiple-choice likelihood for V*, cycle accuracy for
HR-Bench): here the answer is judged like any GRIT answer (the judge sees "<letter>. <option>").
"""

from __future__ import annotations

import argparse
import base64
import binascii
import csv
import io
import json
import logging
import random
import string
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from grit_exp.data.derived import write_built_file
from grit_exp.data.validation import image_size
from grit_exp.errors import DataError

log = logging.getLogger(__name__)

VSTAR_FOLDERS = ("direct_attributes", "relative_position")
VSTAR_FIELDS = ("question", "options", "bbox")
HRBENCH_COLUMNS = ("index", "question", "answer", "category", "image", "A", "B", "C", "D")
OPTION_ORDERS = ("seeded", "as_published")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def multiple_choice(question: str, options: Sequence[str]) -> str:
    """The question followed by its lettered options, one per line."""
    lines = [question.strip(), "Options:"] + [f"{string.ascii_uppercase[k]}. {o}" for k, o in enumerate(options)]
    return "\n".join(lines)


def _strings(value: Any, location: str, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise DataError(f"{what} must be a non-empty list of non-empty strings, got {value!r}", reason="wrong_type",
                        location=location)
    return value


def _xywh_to_xyxy(box: Any, location: str) -> list[float]:
    if (not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                              for v in box) or box[2] <= 0 or box[3] <= 0):
        raise DataError(f"bbox {box!r} is not [x, y, width, height] with a positive width and height (V* Bench's layout)",
                        reason="bad_box", location=location)
    x, y, w, h = (float(v) for v in box)
    return [x, y, x + w, y + h]


# --------------------------------------------------------------------------------------------- V* Bench


def vstar_rows(bench: Path, *, option_order: str = "seeded", seed: int = 0) -> list[dict[str, Any]]:
    """GRIT_data rows of a V* Bench folder (module docstring); images are named relative to `bench`."""
    if option_order not in OPTION_ORDERS:
        raise DataError(f"option_order={option_order!r}; choose one of {', '.join(OPTION_ORDERS)}", reason="config")
    rows: list[dict[str, Any]] = []
    for folder in VSTAR_FOLDERS:
        if not (bench / folder).is_dir():
            raise DataError(f"no {folder}/ folder: V* Bench holds direct_attributes/ and relative_position/ "
                            "(Hugging Face craigwu/vstar_bench)", reason="missing_file", location=str(bench))
        images = sorted(p for p in (bench / folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for image in images:
            annotation = image.with_suffix(".json")
            location = str(annotation)
            if not annotation.is_file():
                raise DataError(f"no annotation beside {image.name} (V* Bench puts <name>.json next to each image)",
                                reason="missing_file", location=location)
            try:
                obj = json.loads(annotation.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(f"malformed JSON ({exc.msg} at line {exc.lineno})", reason="malformed_json",
                                location=f"{location}:{exc.lineno}") from exc
            missing = [k for k in VSTAR_FIELDS if not isinstance(obj, dict) or k not in obj]
            if missing:
                raise DataError(f"missing field(s) {', '.join(missing)}; expected V* Bench's annotation "
                                "{question, options, bbox, target_object}", reason="missing_field", location=location)
            options = _strings(obj["options"], location, "options")
            if not isinstance(obj["bbox"], list):
                raise DataError(f"bbox must be a list of [x, y, width, height] boxes, got {obj['bbox']!r}",
                                reason="bad_box", location=location)
            boxes = [_xywh_to_xyxy(box, location) for box in obj["bbox"]]
            order = list(range(len(options)))
            if option_order == "seeded":
                random.Random(f"vstar:{seed}:{folder}/{image.name}").shuffle(order)
            shown = [options[k] for k in order]
            letter = string.ascii_uppercase[order.index(0)]
            width, height = image_size(str(image))
            rows.append({
                "question": multiple_choice(str(obj["question"]), shown), "answer": f"{letter}. {options[0]}",
                "image": f"{folder}/{image.name}", "width": width, "height": height, "bboxs": boxes,
                "dataset": f"vstar_{folder}", "split": "test", "answer_letter": letter, "options": shown,
                "target_object": obj.get("target_object"), "vstar_question": obj["question"],
            })
    if not rows:
        raise DataError("no V* Bench images found (expected <folder>/<name>.jpg with <name>.json)",
                        reason="missing_file", location=str(bench))
    return rows


# --------------------------------------------------------------------------------------------- HR-Bench


def _save_image(data: bytes, folder: Path, index: str, location: str) -> tuple[str, int, int]:
    """Decode check, write (never replacing other bytes) and return (file name, width, height)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt, size = (image.format or "PNG").lower(), image.size
            image.verify()
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"column image does not decode to an image ({exc})", reason="bad_image", location=location) from exc
    name = f"{index}.{'jpg' if fmt == 'jpeg' else fmt}"
    path = folder / name
    if path.exists() and path.read_bytes() != data:
        raise DataError(f"{path} exists with other bytes; it was not written from this TSV: move it away",
                        reason="config", location=location)
    folder.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(data)
    return name, int(size[0]), int(size[1])


def hrbench_rows(tsv: Path, image_folder: Path) -> list[dict[str, Any]]:
    """GRIT_data rows of an HR-Bench TSV (module docstring); images decoded into `image_folder`, rows name
    them relative to it."""
    csv.field_size_limit(sys.maxsize)  # the image column holds whole 4K / 8K images
    stem = Path(tsv).stem.replace("hr_bench_", "")
    rows: list[dict[str, Any]] = []
    with Path(tsv).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [c for c in HRBENCH_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"missing column(s) {', '.join(missing)}; HR-Bench's TSV has {', '.join(HRBENCH_COLUMNS)}"
                            " (and cycle_category)", reason="missing_field", location=f"{tsv}:1")
        for obj in reader:
            location = f"{tsv}:{reader.line_num}"
            empty = [c for c in HRBENCH_COLUMNS if not (obj.get(c) or "").strip()]
            if empty:
                raise DataError(f"empty column(s) {', '.join(empty)}", reason="missing_field", location=location)
            letter = obj["answer"].strip().upper()
            if letter not in ("A", "B", "C", "D"):
                raise DataError(f"answer {obj['answer']!r} is not an option letter A-D", reason="wrong_type", location=location)
            try:
                data = base64.b64decode(obj["image"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise DataError(f"column image is not base64 ({exc})", reason="bad_image", location=location) from exc
            name, width, height = _save_image(data, image_folder, obj["index"].strip(), location)
            options = [obj[c] for c in "ABCD"]
            rows.append({
                "question": multiple_choice(obj["question"], options), "answer": f"{letter}. {obj[letter]}",
                "image": name, "width": width, "height": height, "bboxs": [],
                "dataset": f"hrbench_{stem}_{obj['category'].strip()}", "split": "test", "answer_letter": letter,
                "options": options, "hrbench_index": obj["index"].strip(), "category": obj["category"].strip(),
                "cycle_category": (obj.get("cycle_category") or "").strip(),
            })
    return rows


# --------------------------------------------------------------------------------------------- command


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grit_exp.data.highres_benchmarks", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    vstar = sub.add_parser("vstar", help="V* Bench folder -> <root>/vstar_bench.jsonl (images stay in the folder)")
    vstar.add_argument("--bench", type=Path, required=True)
    vstar.add_argument("--root", type=Path, required=True)
    vstar.add_argument("--option-order", choices=OPTION_ORDERS, default="seeded")
    vstar.add_argument("--seed", type=int, default=0)
    hr = sub.add_parser("hrbench", help="HR-Bench TSV -> <root>/<stem>.jsonl and images under <root>/<stem>/")
    hr.add_argument("--tsv", type=Path, required=True)
    hr.add_argument("--root", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "vstar":
            rows = vstar_rows(args.bench, option_order=args.option_order, seed=args.seed)
            out = write_built_file(args.root / "vstar_bench.jsonl", rows, {
                "source": str(args.bench), "format": "vstar_bench", "option_order": args.option_order, "seed": args.seed})
        else:
            rows = hrbench_rows(args.tsv, args.root / args.tsv.stem)
            out = write_built_file(args.root / f"{args.tsv.stem}.jsonl", rows, {"source": str(args.tsv), "format": "hr_bench"})
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    log.info("wrote %d rows to %s", len(rows), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
