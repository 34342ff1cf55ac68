"""The rows an evaluation scores: reading eval files (and replay files) into `EvalItem`s, and the
paper scorer's deduplication.

Unlike the training reader, a row whose image file is missing is kept (a whole eval file whose image
folder is missing or holds none of its images is an error first, `check_image_folder`): it is marked
`image_missing`, recorded in samples.jsonl and counted in metrics.json (a live model cannot answer
it; a replayed completion is still scored, since boxes and answers need no pixels). Every other
problem of a line raises `DataError` naming file:line, or with `on_error=skip` is skipped and
counted in a `SkipReport`.

`dedup_items` keeps the first row of each (dataset, question, image, gt answer), as the authors'
scorer did, and counts the dropped duplicates per dataset.

Left out: model inference, replay-specific fields (`grit_exp.rollout.replay` passes a hook), scoring.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grit_exp.data.reader import DataFile, SkipReport, read_jsonl, subset_rows
from grit_exp.data.schema import GritRow
from grit_exp.data.validation import check_image_folder, parse_row
from grit_exp.errors import DataError
from grit_exp.grounding.frames import ImageGeometry

logger = logging.getLogger(__name__)



@dataclass
class EvalItem:
    row: GritRow
    image_missing: bool
    set_name: str  # the eval file's name (dataset.eval[].name, else its stem) or the replay file's stem
    # replay only: the recorded completion and what is needed to read its boxes
    completion: str | None = None
    family: str | None = None
    geometry: ImageGeometry | None = None
    completion_tokens: int | None = None
    boxes_outside_frame: int = 0  # replay: paper-regex boxes beyond the model's frame (a wrong frame's sign)


# take_fields(obj, location) -> fields: removes its own keys from the JSON object before validation;
# finish(row, fields, location) -> EvalItem keyword arguments, once the row is validated.
TakeFields = Callable[[dict[str, Any], str], dict[str, Any]]
FinishFields = Callable[[GritRow, dict[str, Any], str], dict[str, Any]]


def new_skip_report() -> SkipReport:
    return SkipReport(counts=Counter(), locations=defaultdict(list))


def read_items(
    path: str | Path,
    image_root: str | Path,
    *,
    set_name: str,
    on_error: str,
    skipped: SkipReport,
    default_split: str = "val",
    take_fields: TakeFields | None = None,
    finish_fields: FinishFields | None = None,
) -> list[EvalItem]:
    """The lines of one JSONL file as `EvalItem`s (missing images kept and marked).

    The hooks (replay: completion, model family, geometry) raise DataError for bad values, which
    `on_error` treats like any other bad line.
    """
    if on_error not in ("raise", "skip"):
        raise DataError(f"on_error={on_error!r} is not valid; choose one of 'raise', 'skip'", reason="config")
    file_path = Path(str(path)).expanduser()
    if not file_path.is_file():
        raise DataError(f"{file_path} does not exist (check the configured path)", reason="missing_file")

    def parse(obj: Any, location: str) -> EvalItem:
        if not isinstance(obj, dict):
            raise DataError(
                f"expected a JSON object per line, got {type(obj).__name__}", reason="not_an_object", location=location
            )
        fields = take_fields(obj, location) if take_fields is not None else {}
        row = parse_row(obj, image_root=image_root, location=location, default_split=default_split, require_image=False)
        extra = finish_fields(row, fields, location) if finish_fields is not None else fields
        return EvalItem(row=row, image_missing=not Path(row.image).is_file(), set_name=set_name, **extra)

    return read_jsonl(file_path, parse, on_error=on_error, skipped=skipped)


def _attr(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def load_eval_items(dataset_cfg: Any, seed: int) -> tuple[list[EvalItem], SkipReport]:
    """The eval rows of a `dataset` config group, in order: the synthetic val set first when enabled,
    then each `dataset.eval` file; `dataset.eval_num_samples` takes a seeded subset per file."""
    files = list(_attr(dataset_cfg, "eval", None) or [])
    synthetic = _attr(dataset_cfg, "synthetic")
    if synthetic is not None and _attr(synthetic, "enabled", False):
        from grit_exp.data.synthetic import ensure_synthetic

        paths = ensure_synthetic(synthetic)
        files.insert(0, DataFile(str(paths.val_jsonl), str(paths.image_root), "synthetic_val"))
    skipped = new_skip_report()
    items: list[EvalItem] = []
    names: set[str] = set()
    for file_cfg in files:
        name = str(_attr(file_cfg, "name") or Path(str(_attr(file_cfg, "path"))).stem)
        if name in names:
            raise DataError(f"two dataset.eval entries are both named {name!r}; give them distinct `name`s", reason="config")
        names.add(name)
        check_image_folder(_attr(file_cfg, "path"), _attr(file_cfg, "image_root"))  # a whole folder missing: error
        rows = read_items(
            _attr(file_cfg, "path"),
            _attr(file_cfg, "image_root"),
            set_name=name,
            on_error=_attr(dataset_cfg, "on_error", "raise"),
            skipped=skipped,
        )
        limit = _attr(dataset_cfg, "eval_num_samples")
        if limit is not None:
            rows = subset_rows(rows, limit, seed, key="dataset.eval_num_samples", allow_fewer=True)  # type: ignore[arg-type]
        items.extend(rows)
    if skipped.total:
        logger.warning("skipped %d bad eval row(s) (dataset.on_error=skip): %s", skipped.total, skipped.summary())
    return items, skipped


def dedup_items(items: list[EvalItem]) -> tuple[list[EvalItem], Counter]:
    """First item of each GritRow.key (dataset, question, image, gt answer); dropped duplicates per dataset."""
    seen: set[tuple[str, str, str, str]] = set()
    kept: list[EvalItem] = []
    dropped: Counter = Counter()
    for item in items:
        key = item.row.key
        if key in seen:
            dropped[item.row.dataset] += 1
            continue
        seen.add(key)
        kept.append(item)
    return kept, dropped
