"""Where a generated synthetic set lies: its train and val JSONL files and its image folder, under one
fingerprinted folder. Shared by both synthetic tasks (`data.synthetic`, `data.synthetic_zoom`) so that neither
imports the other's generator.

Left out: generating or caching a set (the two generator modules).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
