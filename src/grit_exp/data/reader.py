"""Read GRIT_data JSONL files into validated `GritRow`s.

`load_rows` reads several files (each with its own image folder) in the given order, validates
every line (`grit_exp.data.validation`; first `check_image_folder`: a file whose image folder is
missing or holds none of its images fails at once, naming the folder), and optionally takes a deterministic seed-controlled
subset. With ``on_error="raise"`` the first bad line raises `DataError` naming file:line; with
``on_error="skip"`` bad lines are skipped, counted, and summarised in ONE warning per call.
`load_dataset_splits` turns a `dataset` config group (with the synthetic generator when enabled)
into the training rows and the evaluation sets by name.

Deliberately left out: shuffling and batching (the trainer's job), image decoding, prompts.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from grit_exp.data.schema import GritRow
from grit_exp.data.validation import check_image_folder, parse_row
from grit_exp.errors import DataError

__all__ = ["DataError", "DataFile", "load_dataset_splits", "load_rows", "SkipReport"]

logger = logging.getLogger(__name__)

ON_ERROR_CHOICES = ("raise", "skip")
_LOCATIONS_SHOWN = 3
T = TypeVar("T")


@dataclass
class DataFile:
    """A plain stand-in for `grit_exp.config.DataFileConfig` (any object with these attributes works)."""

    path: str
    image_root: str
    name: str | None = None


@dataclass
class SkipReport:
    """What `on_error="skip"` left out: counts and the first locations per reason."""

    counts: Counter
    locations: dict[str, list[str]]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = []
        for reason, count in sorted(self.counts.items()):
            shown = ", ".join(self.locations[reason])
            more = ", ..." if count > len(self.locations[reason]) else ""
            parts.append(f"{reason}: {count} ({shown}{more})")
        return "; ".join(parts)


def _attr(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _read_file(file_cfg: Any, *, on_error: str, default_split: str, skipped: SkipReport) -> list[GritRow]:
    path = _attr(file_cfg, "path")
    image_root = _attr(file_cfg, "image_root")
    if not path or image_root is None:
        raise DataError(f"a data file entry needs `path` and `image_root`; got {file_cfg!r}", reason="config")
    file_path = Path(str(path)).expanduser()
    if not file_path.is_file():
        raise DataError(
            f"data file {file_path} does not exist (check the dataset config's `path` and paths.data_root)",
            reason="missing_file",
        )
    check_image_folder(file_path, image_root)  # a whole set's images missing: one error naming the folder
    return read_jsonl(
        file_path,
        lambda obj, location: parse_row(obj, image_root=image_root, location=location, default_split=default_split),
        on_error=on_error,
        skipped=skipped,
    )


def read_jsonl(
    file_path: Path, parse: Callable[[Any, str], T], *, on_error: str, skipped: SkipReport
) -> list[T]:
    """`parse(obj, "file:line")` for each non-blank line's JSON value, in order.

    Malformed JSON, and any `DataError` that `parse` raises, stop the read (on_error="raise") or drop
    the line and count it by reason in `skipped` with its first locations (on_error="skip").
    """
    out: list[T] = []
    with file_path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            location = f"{file_path}:{line_number}"
            try:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"malformed JSON ({exc.msg} at column {exc.colno}); each line must be one "
                        "JSON object",
                        reason="malformed_json",
                        location=location,
                    ) from exc
                out.append(parse(obj, location))
            except DataError as exc:
                if on_error == "raise":
                    raise
                skipped.counts[exc.reason] += 1
                if len(skipped.locations[exc.reason]) < _LOCATIONS_SHOWN:
                    skipped.locations[exc.reason].append(exc.location or str(file_path))
    return out


def subset_rows(
    rows: list[GritRow],
    num_samples: int,
    seed: int,
    *,
    key: str = "dataset.num_samples",
    allow_fewer: bool = False,
) -> list[GritRow]:
    """A deterministic seed-controlled subset of `num_samples` rows, kept in file order.

    More requested than available raises `DataError` naming `key` and the available count, unless
    `allow_fewer` (then every row is returned).
    """
    if num_samples < 1:
        raise DataError(f"{key}={num_samples} must be >= 1 (or null for all rows)", reason="config")
    if num_samples > len(rows):
        if allow_fewer:
            return list(rows)
        raise DataError(
            f"{key}={num_samples} but only {len(rows)} rows are available; choose "
            f"{key} <= {len(rows)} or null for all rows",
            reason="config",
        )
    chosen = sorted(random.Random(seed).sample(range(len(rows)), num_samples))
    return [rows[i] for i in chosen]


def load_rows(
    files: list[Any],
    *,
    on_error: str = "raise",
    num_samples: int | None = None,
    seed: int = 0,
    default_split: str = "train",
    num_samples_key: str = "dataset.num_samples",
    allow_fewer: bool = False,
) -> list[GritRow]:
    """Read and validate the rows of several GRIT_data files (each `path` + `image_root` [+ `name`]).

    Rows come in file order, then line order. `num_samples` takes a deterministic subset (see
    `subset_rows`). Rows without a ``split`` field get `default_split`.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise DataError(
            f"dataset.on_error={on_error!r} is not valid; choose one of 'raise', 'skip'", reason="config"
        )
    skipped = SkipReport(counts=Counter(), locations=defaultdict(list))
    rows: list[GritRow] = []
    for file_cfg in files:
        rows.extend(_read_file(file_cfg, on_error=on_error, default_split=default_split, skipped=skipped))
    if skipped.total:
        logger.warning(
            "skipped %d bad row(s) of %d (dataset.on_error=skip): %s",
            skipped.total,
            skipped.total + len(rows),
            skipped.summary(),
        )
    if num_samples is not None:
        rows = subset_rows(rows, num_samples, seed, key=num_samples_key, allow_fewer=allow_fewer)
    return rows


def _eval_set_name(file_cfg: Any) -> str:
    name = _attr(file_cfg, "name")
    return str(name) if name else Path(str(_attr(file_cfg, "path"))).stem


def load_dataset_splits(dataset_cfg: Any, seed: int) -> tuple[list[GritRow], dict[str, list[GritRow]]]:
    """(training rows, evaluation sets by name) for a composed `dataset` config group.

    With ``synthetic.enabled`` the generated set (cached, see `grit_exp.data.synthetic`) comes first:
    its train file heads the training files and its val file is the eval set ``synthetic_val``;
    configured files are added after it. Eval sets are named by their `name` (else the file stem);
    ``eval_num_samples`` takes at most that many rows per eval set (a smaller set is used whole).
    """
    train_files = list(_attr(dataset_cfg, "train", None) or [])
    eval_files = list(_attr(dataset_cfg, "eval", None) or [])
    synthetic_cfg = _attr(dataset_cfg, "synthetic")
    if synthetic_cfg is not None and _attr(synthetic_cfg, "enabled", False):
        from grit_exp.data.synthetic import ensure_synthetic

        paths = ensure_synthetic(_synthetic_for_budget(synthetic_cfg, _attr(dataset_cfg, "num_samples"), train_files))
        train_files.insert(0, DataFile(str(paths.train_jsonl), str(paths.image_root), "synthetic_train"))
        eval_files.insert(0, DataFile(str(paths.val_jsonl), str(paths.image_root), "synthetic_val"))
    if not train_files:
        raise DataError(
            "dataset.train is empty and dataset.synthetic.enabled is false: no training data", reason="config"
        )
    on_error = _attr(dataset_cfg, "on_error", "raise")
    train = load_rows(
        train_files,
        on_error=on_error,
        num_samples=_attr(dataset_cfg, "num_samples"),
        seed=seed,
        default_split="train",
        num_samples_key="dataset.num_samples",
    )
    eval_sets: dict[str, list[GritRow]] = {}
    for file_cfg in eval_files:
        name = _eval_set_name(file_cfg)
        if name in eval_sets:
            raise DataError(
                f"two dataset.eval entries are both named {name!r}; give them distinct `name`s",
                reason="config",
            )
        eval_sets[name] = load_rows(
            [file_cfg],
            on_error=on_error,
            num_samples=_attr(dataset_cfg, "eval_num_samples"),
            seed=seed,
            default_split="val",
            num_samples_key="dataset.eval_num_samples",
            allow_fewer=True,
        )
    logger.info(
        "data: %d training rows; eval sets %s",
        len(train),
        ", ".join(f"{name} ({len(rows)})" for name, rows in eval_sets.items()) or "none",
    )
    return train, eval_sets


def _synthetic_for_budget(synthetic_cfg: Any, num_samples: int | None, other_train_files: list) -> Any:
    """A data budget (`dataset.num_samples`) above the generated set's size, with no other training
    files, generates that many training rows: `-m dataset.num_samples=20,500,7000` works on the demo."""
    num_train = int(_attr(synthetic_cfg, "num_train"))
    if num_samples is None or other_train_files or num_samples <= num_train:
        return synthetic_cfg
    import dataclasses

    from omegaconf import DictConfig, OmegaConf

    if isinstance(synthetic_cfg, DictConfig):
        return OmegaConf.merge(synthetic_cfg, {"num_train": int(num_samples)})
    return dataclasses.replace(synthetic_cfg, num_train=int(num_samples))

