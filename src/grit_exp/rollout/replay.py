"""Replay: recorded completions read from a JSONL file, scored like a live rollout, no model loaded.

`rollout=replay rollout.path=FILE.jsonl`. Each line holds the GRIT_data fields (`question`, `answer`,
`image`, `width`, `height`, `bboxs`, `dataset`, ...) plus:

- `completion` (required): the model's text;
- `model_family`: "qwen2_5_vl" or "internvl", the frame of the completion's boxes;
- `image_grid_thw` (Qwen only): the processor's (t, grid_h, grid_w) for this image, as [t, h, w] or
  [[t, h, w]]: the resized frame the model wrote its pixels in;
- `completion_tokens` (optional): the completion's length in tokens, for `mean_completion_tokens`.

A frame is never guessed. A line without `model_family` takes `model.family`, and a Qwen line
without `image_grid_thw` recomputes the resized frame from `model.min_pixels` / `model.max_pixels`
(Qwen's smart resize), only when the config names a real model (`model.tiny_builder` null, e.g.
`model=qwen2_5_vl_3b`): the tiny demo model's 112 px frame is not the frame of anyone's completions.
Otherwise the line is an error that names the key to set. Boxes that fall outside their frame (a
sign of a wrong frame) are counted per item and reported in a warning.

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
from grit_exp.data.reader import SkipReport
from grit_exp.data.schema import GritRow
from grit_exp.errors import DataError
from grit_exp.evaluation.items import EvalItem, new_skip_report, read_items
from grit_exp.grounding.boxes import parse_paper_boxes
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


NO_FAMILY = (
    "no 'model_family' in this line and the config names no real model to take it from: add "
    "\"model_family\": \"qwen2_5_vl\" or \"internvl\" to each line, or choose the model that wrote the "
    "completions (model=qwen2_5_vl_3b, model=internvl3_2b)"
)
NO_QWEN_FRAME = (
    "a Qwen completion without 'image_grid_thw' and the config names no real Qwen model whose resize gives "
    "the frame: add \"image_grid_thw\": [t, grid_h, grid_w] to each line, or choose the model that wrote the "
    "completions (model=qwen2_5_vl_3b, or its model.min_pixels / model.max_pixels with model.tiny_builder=null)"
)


def boxes_outside_frame(completion: str, geometry: ImageGeometry) -> int:
    """How many of the completion's (paper-regex) boxes leave the model's frame: a wrong frame's symptom."""
    width, height = (1000.0, 1000.0) if geometry.family == "internvl" else (geometry.input_width, geometry.input_height)
    if width is None or height is None:
        return 0
    return sum(
        1 for b in parse_paper_boxes(completion)
        if min(b.box) < 0 or max(b.box[0], b.box[2]) > width or max(b.box[1], b.box[3]) > height
    )


class ReplayFields:
    """The read_items hooks that take the replay fields out of a line and build the box geometry.

    `default_family` is the family of lines without `model_family` and `min_pixels` / `max_pixels`
    the Qwen resize limits of lines without `image_grid_thw`; None: such lines are errors."""

    def __init__(self, default_family: str | None, min_pixels: int | None, max_pixels: int | None) -> None:
        if default_family is not None and default_family not in MODEL_FAMILIES:
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
        if family is None:
            raise DataError(NO_FAMILY, reason="no_frame", location=location)
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
            elif self.min_pixels is not None and self.max_pixels is not None:
                geometry = ImageGeometry.for_qwen_pixels(row.width, row.height, self.min_pixels, self.max_pixels)
            else:
                raise DataError(NO_QWEN_FRAME, reason="no_frame", location=location)
        except ValueError as err:
            raise DataError(str(err), reason="bad_geometry", location=location) from err
        return {
            "completion": fields["completion"],
            "family": family,
            "geometry": geometry,
            "completion_tokens": fields.get("completion_tokens"),
            "boxes_outside_frame": boxes_outside_frame(fields["completion"], geometry),
        }


def read_replay(
    path: str | Path,
    *,
    image_root: str | Path | None = None,
    on_error: str = "raise",
    default_family: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[list[EvalItem], SkipReport]:
    """The replay file's lines as `EvalItem`s carrying their completions, and what was skipped.

    `default_family`, `min_pixels`, `max_pixels`: the frame of lines that do not carry theirs (see the
    module docstring); None: such a line is an error (skipped and counted with on_error=skip)."""
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
    if not items:  # metrics of nothing would read as a real (empty) result
        why = f"all {skipped.total} line(s) were skipped ({skipped.summary()})" if skipped.total else "it has no lines"
        raise DataError(f"rollout.path={str(path)!r}: nothing to replay, {why}", reason="empty_file")
    outside = [item for item in items if item.boxes_outside_frame]
    if outside:
        logger.warning(
            "replay: %d box(es) in %d completion(s) of %s fall outside the model's frame (first: %s); check the "
            "lines' model_family / image_grid_thw or the model config that gives the frame",
            sum(item.boxes_outside_frame for item in outside), len(outside), file_path, outside[0].row.source,
        )
    logger.info("replay: %d completions from %s (images resolved against %s)", len(items), file_path, root)
    return items, skipped


def read_replay_for_config(cfg: Any) -> tuple[list[EvalItem], SkipReport]:
    """`read_replay` with the `rollout` and `model` settings of a composed config: the model config
    supplies a frame only when it is a real model (a tiny model's frame is nobody's)."""
    real = not cfg.model.tiny_builder
    qwen = real and cfg.model.family == "qwen2_5_vl"
    return read_replay(
        cfg.rollout.path,
        image_root=cfg.rollout.image_root,
        on_error=cfg.rollout.on_error,
        default_family=cfg.model.family if real else None,
        min_pixels=cfg.model.min_pixels if qwen else None,
        max_pixels=cfg.model.max_pixels if qwen else None,
    )
