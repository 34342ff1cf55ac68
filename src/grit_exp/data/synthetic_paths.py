"""Where a generated synthetic set lies (its train and val JSONL files and its image folder, under one
fingerprinted folder) and how it is written once: into a temporary folder, then renamed, so an existing folder
is complete. Shared by both synthetic tasks (`data.synthetic`, `data.synthetic_zoom`) so that neither imports
the other's generator.

Left out: what a set holds (the two generator modules).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grit_exp.errors import DataError

logger = logging.getLogger(__name__)

SET_FILES = ("train.jsonl", "val.jsonl", "params.json")  # what every complete set holds


@dataclass(frozen=True)
class SyntheticPaths:
    train_jsonl: Path
    val_jsonl: Path
    image_root: Path

    @property
    def root(self) -> Path:
        return self.train_jsonl.parent


def paths_under(root: Path) -> SyntheticPaths:
    return SyntheticPaths(root / "train.jsonl", root / "val.jsonl", root / "images")


def write_set_once(final: Path, write: Callable[[Path], None]) -> tuple[SyntheticPaths, bool]:
    """The complete set at `final`, written by `write(folder)` unless already there; (paths, written now).
    An existing folder without the set's files is refused, never overwritten."""
    if final.is_dir():
        missing = [name for name in SET_FILES if not (final / name).is_file()]
        if missing:
            raise DataError(
                f"synthetic set {final} lacks {', '.join(missing)}: it was not written by this "
                "generator or was modified; delete the folder to regenerate it",
                reason="incomplete_set",
            )
        return paths_under(final), False
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.is_dir():
                raise
            logger.info("synthetic set %s was completed by another process meanwhile", final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return paths_under(final), True
