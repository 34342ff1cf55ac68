"""Replay: recorded completions read from a JSONL file, scored like a live rollout, no model loaded.

`rollout=replay rollout.path=FILE.jsonl`. Each line holds the GRIT_data fields (`question`, `answer`,
`image`, `width`, `height`, `bboxs`, `dataset`, ...) plus:

- `completion` (required): the model's text;
- `model_family` (optional): "qwen2_5_vl" or "internvl", the frame of the completion's boxes;
  default: `model.family` of the config;
- `image_grid_thw` (optional, Qwen only): the processor's (t, grid_h, grid_w) for this image, as
  [t, h, w] or [[t, h, w]]; without it the resized frame is recomputed from the original size and
  `model.min_pixels` / `model.max_pixels` (Qwen's smart resize);
- `completion_tokens` (optional): the completion's length in tokens, for `mean_completion_tokens`.

Relative `image` paths resolve against `rollout.image_root`, default: the replay file's folder. A
missing image is recorded and counted, not an error (the boxes need only the row's size). A bad
line raises `DataError` naming file:line; `rollout.on_error=skip` skips and counts it.

This module imports neither torch nor transformers: replaying never loads a model.

Left out: generating completions (`hf.py`), scoring (`grit_exp.evaluation`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from grit_exp.config import MODEL_FAMILIES
from grit_exp.data.errors import DataError
from grit_exp.data.reader import SkipReport
from grit_exp.data.schema import GritRow
from grit_exp.evaluation.items import EvalItem, new_skip_report, read_items
from grit_exp.grounding.frames import ImageGeometry

logger = logging.getLogger(__name__)

REPLAY_FIELDS = ("completion", "model_family", "image_grid_thw", "completion_tokens")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _grid(value: Any, location: str) -> list[int]:
    grid = value[0] if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list) else value
    if not isinstance(grid, list) or len(grid) != 3 or not all(_positive_int(v) for v in grid):
        raise DataError(
            f"image_grid_thw is {value!r}; expected [t, grid_h, grid_w] (or [[t, grid_h, grid_w]]) of positive "
            "integers, as Qwen's processor returns it",
            reason="bad_image_grid_thw",
            location=location,
        )
    return list(grid)


class ReplayFields:
    """The read_items hooks that take the replay fields out of a line and build the box geometry."""

    def __init__(self, default_family: str, min_pixels: int, max_pixels: int) -> None:
        if default_family not in MODEL_FAMILIES:
            raise DataError(f"model.family={default_family!r} is not valid; choose one of {MODEL_FAMILIES}", reason="config")
        self.default_family, self.min_pixels, self.max_pixels = default_family, min_pixels, max_pixels

    def take(self, obj: dict[str, Any], location: str) -> dict[str, Any]:
        fields = {key: obj.pop(key) for key in REPLAY_FIELDS if key in obj}
        if "completion" not in fields:
            raise DataError(
                "missing field 'completion' (the recorded model output); a replay line is a GRIT_data row plus "
                "'completion' [, 'model_family', 'image_grid_thw', 'completion_tokens']",
                reason="missing_completion",
                location=location,
            )
        if not isinstance(fields["completion"], str):
            raise DataError(
                f"field 'completion' is {type(fields['completion']).__name__}; expected a string",
                reason="wrong_type",
                location=location,
            )
        family = fields.get("model_family", self.default_family)
        if family not in MODEL_FAMILIES:
            raise DataError(
                f"model_family={family!r} is not valid; choose one of {', '.join(MODEL_FAMILIES)}",
                reason="bad_model_family",
                location=location,
            )
        fields["model_family"] = family
        if fields.get("image_grid_thw") is not None:
            if family != "qwen2_5_vl":
                raise DataError(
                    f"image_grid_thw is given for model_family={family!r}; it describes Qwen's resized frame only "
                    "(InternVL boxes are normalised to [0, 1000])",
                    reason="bad_image_grid_thw",
                    location=location,
                )
            fields["image_grid_thw"] = _grid(fields["image_grid_thw"], location)
        tokens = fields.get("completion_tokens")
        if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0):
            raise DataError(
                f"completion_tokens={tokens!r}; expected a non-negative integer", reason="wrong_type", location=location
            )
        return fields

    def finish(self, row: GritRow, fields: dict[str, Any], location: str) -> dict[str, Any]:
        family = fields["model_family"]
        try:
            if family == "internvl":
                geometry = ImageGeometry.for_internvl(row.width, row.height)
            elif fields.get("image_grid_thw") is not None:
                geometry = ImageGeometry.for_qwen_grid(row.width, row.height, fields["image_grid_thw"])
            else:
                geometry = ImageGeometry.for_qwen_pixels(row.width, row.height, self.min_pixels, self.max_pixels)
        except ValueError as err:
            raise DataError(str(err), reason="bad_geometry", location=location) from err
        return {
            "completion": fields["completion"],
            "family": family,
            "geometry": geometry,
            "completion_tokens": fields.get("completion_tokens"),
        }


def read_replay(
    path: str | Path,
    *,
    image_root: str | Path | None = None,
    on_error: str = "raise",
    default_family: str = "qwen2_5_vl",
    min_pixels: int = 3136,
    max_pixels: int = 256 * 28 * 28,
) -> tuple[list[EvalItem], SkipReport]:
    """The replay file's lines as `EvalItem`s carrying their completions, and what was skipped."""
    file_path = Path(str(path)).expanduser()
    if not file_path.is_file():
        raise DataError(f"rollout.path={str(path)!r}: no such replay file", reason="missing_file")
    root = Path(str(image_root)).expanduser() if image_root else file_path.resolve().parent
    hooks = ReplayFields(default_family, min_pixels, max_pixels)
    skipped = new_skip_report()
    items = read_items(
        file_path,
        root,
        set_name=file_path.stem,
        on_error=on_error,
        skipped=skipped,
        take_fields=hooks.take,
        finish_fields=hooks.finish,
    )
    if skipped.total:
        logger.warning(
            "replay: skipped %d bad line(s) of %s (rollout.on_error=skip): %s", skipped.total, file_path, skipped.summary()
        )
    logger.info("replay: %d completions from %s (images resolved against %s)", len(items), file_path, root)
    return items, skipped


def read_replay_for_config(cfg: Any) -> tuple[list[EvalItem], SkipReport]:
    """`read_replay` with the `rollout` and `model` settings of a composed config."""
    return read_replay(
        cfg.rollout.path,
        image_root=cfg.rollout.image_root,
        on_error=cfg.rollout.on_error,
        default_family=cfg.model.family,
        min_pixels=cfg.model.min_pixels,
        max_pixels=cfg.model.max_pixels,
    )
