"""Training files that the released GRIT_data does not ship, built from files that it (or a public set) does.

- `sft_target_rows`: the few-shot SFT rows (Table 1's "few-shot SFT"): each GRIT_data training row
  with a ``gold`` object of style ``box_list`` (its `bboxs`, then its answer; rendered per model family
  by `grit_exp.data.gold_chain`). A RECONSTRUCTION: the paper did not release its SFT targets.
- `vsr20_rows`: Table 3's "20 VSR samples" arm: the 10 rows of ``vsr_cot_train_10.jsonl`` plus 10 more
  VSR rows drawn (seeded) from a pool in GRIT_data format (e.g. `python -m grit_exp.data.build vsr`'s
  output), never one whose image is in the base rows or in ``vsr_val.jsonl``. The paper does not say
  which 10 rows it added: this is a reconstruction too.
- `write_built_file`: writes such a file with a ``<file>.built.json`` record beside it (sources, seed,
  sha256), and refuses to replace a file that the toolkit did not write (no record, or edited since).

Left out: the public-format converters (`grit_exp.data.public_formats`), the command line
(`grit_exp.data.build`), images (the rows point at the images the source rows point at).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grit_exp.data.gold_chain import sft_gold
from grit_exp.data.validation import parse_row
from grit_exp.errors import DataError

# the GRIT_data training files and their image folders (as in conf/dataset/grit20.yaml)
SFT_SOURCES = {"tallyqa_train_10.jsonl": "tallyqa", "vsr_cot_train_10.jsonl": "vsr"}
VSR_BASE = "vsr_cot_train_10.jsonl"
VSR_VAL = "vsr_val.jsonl"
VSR20 = "vsr_train_20.jsonl"


def sft_file_name(source: str) -> str:
    """tallyqa_train_10.jsonl -> tallyqa_train_10_sft.jsonl (the names conf/dataset/grit20_sft.yaml reads)."""
    return source.removesuffix(".jsonl") + "_sft.jsonl"


def read_objects(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file:line, object) for each non-blank line of a JSONL file; DataError naming file:line on bad JSON."""
    if not path.is_file():
        raise DataError(f"{path} does not exist", reason="missing_file")
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        location = f"{path}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON ({exc.msg})", reason="malformed_json", location=location) from exc
        out.append((location, obj))
    return out


def sft_target_rows(source: Path, image_root: Path | None = None) -> list[dict[str, Any]]:
    """The rows of a GRIT_data file, each with the reconstructed SFT target as ``gold`` (style box_list).

    Rows are validated as the reader does (images need not be present yet); every other field is kept.
    A row that already carries ``gold`` is refused: its chain would be silently replaced.
    """
    out = []
    for location, obj in read_objects(source):
        row = parse_row(obj, image_root=image_root or source.parent, location=location, require_image=False)
        if "gold" in obj:
            raise DataError("row already has a 'gold' chain; SFT targets are built from rows without one",
                            reason="bad_gold", location=location)
        out.append({**obj, "gold": sft_gold(row).to_dict()})
    return out


def vsr20_rows(base: Path, pool: Path, *, seed: int, val: Path | None = None, extra: int = 10) -> list[dict[str, Any]]:
    """The base file's rows, then `extra` rows drawn with `seed` from `pool` (GRIT_data format, VSR rows).

    Pool rows whose image is among the base rows' or the validation file's images are never drawn
    (no leak into vsr_val, no second question on a base image). DataError when too few remain.
    """
    base_rows = [obj for _, obj in read_objects(base)]
    excluded = {str(obj.get("image")) for obj in base_rows}
    if val is not None and val.is_file():
        excluded |= {str(obj.get("image")) for _, obj in read_objects(val)}
    candidates = []
    for location, obj in read_objects(pool):
        parse_row(obj, image_root=pool.parent, location=location, require_image=False)
        if obj["dataset"] != "vsr":
            raise DataError(f"pool row has dataset {obj['dataset']!r}; the 20-VSR arm draws VSR rows only",
                            reason="config", location=location)
        if str(obj["image"]) not in excluded:
            candidates.append(obj)
    if len(candidates) < extra:
        raise DataError(
            f"{pool} has {len(candidates)} VSR rows whose image is in neither {base.name} nor {VSR_VAL}; "
            f"{extra} are needed", reason="config")
    chosen = sorted(random.Random(seed).sample(range(len(candidates)), extra))
    return base_rows + [candidates[i] for i in chosen]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_path(path: Path) -> Path:
    return path.with_name(path.name + ".built.json")


def write_built_file(path: Path, rows: Iterable[dict[str, Any]], provenance: dict[str, Any]) -> Path:
    """Write `rows` as JSONL at `path` and the record ``<path>.built.json`` (provenance + sha256).

    An existing `path` is replaced only if its record says the toolkit wrote it and the content is
    unchanged since; otherwise DataError (never overwrite a user's file).
    """
    record = record_path(path)
    if path.exists():
        built = json.loads(record.read_text()) if record.is_file() else None
        if built is None or built.get("sha256") != _sha256(path):
            raise DataError(
                f"{path} exists and was not written by grit_exp.data.build (or was edited since): move it away "
                "or choose another --out", reason="config")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    tmp.replace(path)
    record.write_text(json.dumps({**provenance, "sha256": _sha256(path)}, indent=2) + "\n")
    return path
