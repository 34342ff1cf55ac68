"""Evaluated samples with their pictures, for notebooks: `images/sample_<index>.png` + `samples.jsonl`.

`grit_exp.evaluate` writes one record per sample to samples.jsonl (each with its `index`) and draws
a chosen few as images/sample_<index>.png (model boxes red, ground truth green). `pictured_samples`
pairs each picture with its record; without pictures it returns the first records alone. Left out:
drawing (grit_exp.evaluation.pictures does it) and any scoring.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grit_exp.reporting.collect import ReportError

PICTURE_INDEX = re.compile(r"(\d+)")


@dataclass
class PicturedSample:
    picture: Path | None  # images/sample_<index>.png, or None when the sample was not drawn
    record: dict[str, Any] | None  # its samples.jsonl line, or None when samples.jsonl lacks it

    def caption(self, width: int = 300) -> str:
        """Dataset, question, answer, scores and the start of the completion, on a few lines."""
        r = self.record or {}
        metrics = r.get("metrics") or {}
        scores = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, int | float))
        completion = (r.get("completion") or "").replace("\n", " ")
        if len(completion) > width:
            completion = completion[:width] + " ..."
        return (f"[{r.get('dataset', '?')}] Q: {r.get('question', '?')}\nGT: {r.get('answer', '?')}   {scores}\n"
                f"{completion}")


def read_samples(folder: Path) -> list[dict[str, Any]]:
    path = folder / "samples.jsonl"
    if not path.exists():
        return []
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ReportError(f"{path}:{lineno}: not valid JSON: {err.msg}") from err
    return records


def pictured_samples(folder: Path, limit: int = 8) -> list[PicturedSample]:
    """Up to `limit` pictures of `folder`/images with their records (or the first records when none were drawn)."""
    records = read_samples(folder)
    by_index = {r["index"]: r for r in records if isinstance(r.get("index"), int)}
    pictures = sorted((folder / "images").glob("*.png")) if (folder / "images").is_dir() else []
    if not pictures:
        return [PicturedSample(None, r) for r in records[:limit]]
    out = []
    for picture in pictures[:limit]:
        match = PICTURE_INDEX.search(picture.stem)
        out.append(PicturedSample(picture, by_index.get(int(match.group(1))) if match else None))
    return out
