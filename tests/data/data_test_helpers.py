"""Helpers shared by the data tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_jsonl(path: Path, lines: list[dict[str, Any] | str]) -> Path:
    """One line per entry: a dict is JSON-encoded, a str is written as it is (for malformed lines)."""
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def good_row(**changes: Any) -> dict[str, Any]:
    """A valid GRIT_data row for the `image_root` fixture's cat.png (64 x 48)."""
    row = {
        "question": "How many cats are there?",
        "answer": "2",
        "image": "cat.png",
        "width": 64,
        "height": 48,
        "bboxs": [[1, 2, 20, 30], [30.5, 4.25, 60, 40]],
        "dataset": "tallyqa",
        "split": "train",
        "key_words": ["cats"],
    }
    row.update(changes)
    return row
