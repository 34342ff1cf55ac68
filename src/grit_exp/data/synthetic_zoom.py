"""A synthetic task where looking closer is necessary (issue #20's CPU demo): rows whose answer cannot be
read from the model's downscaled view of the image, and can from a native-resolution crop.

One example = a 448 px scene (``image_size``) of small striped squares, 16 px each (``square_size``),
one red (the target) and 3 to 6 others in blue or green, at random non-overlapping places. Each square
is filled with stripes, horizontal or vertical, of period 4 px (rows / columns 1 and 2 of each period
in the square's colour, 0 and 3 white: a pattern symmetric about the square's centre). Question
"Are the stripes of the red square horizontal or vertical?" -> "horizontal" / "vertical"; ``dataset``
``synth_zoom``; ``bboxs`` = the red square's tight box; a ``gold`` chain (the box, then the answer).

Why the tiny model must zoom: its processor brings the 448 px scene to 112 px (max_pixels 112 x 112),
a 4x downscale with an antialiasing filter. Any filter whose shifted copies sum to one (box, bilinear,
bicubic) averages every period-4 stripe pattern to the same flat colour, so the two classes of the
same scene give (nearly) identical model inputs; a crop of the square's region fed back at native
resolution (rollout.zoom, crop_min_pixels 3136: 56 px and up) shows the stripes plainly. The test
(tests/data/test_synthetic_zoom.py) measures both through the tiny model's own image processor.

`ensure_synthetic_zoom(cfg)` writes the set once, cached by fingerprint, like `synthetic.py`::

    <out_dir>/zoom-<fingerprint>/{train,val}.jsonl  params.json  images/{train,val}/000000.png ...

Left out: the other synthetic kinds (`synthetic_scenes.py`); the gold chain here is single-turn GRIT (with the
box): with rollout.zoom on, the warm start turns it into a zoom conversation (`data/zoom_chain.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from grit_exp.data.synthetic_paths import SyntheticPaths, write_set_once
from grit_exp.data.synthetic_scenes import BACKGROUND, COLORS, GAP
from grit_exp.errors import DataError

logger = logging.getLogger(__name__)

ZOOM_GENERATOR_VERSION = 1
DATASET = "synth_zoom"
STRIPES = ("horizontal", "vertical")
TARGET_COLOR = "red"
DISTRACTOR_COLORS = ("blue", "green")
PERIOD = 4  # stripe period in pixels; rows (or columns) 1 and 2 of each period are coloured
QUESTION = f"Are the stripes of the {TARGET_COLOR} square horizontal or vertical?"
WHITE = (255, 255, 255)


@dataclass(frozen=True)
class ZoomTaskParams:
    """Everything that determines the generated files (all of it goes into the fingerprint)."""

    num_train: int = 2000
    num_val: int = 120
    image_size: int = 448
    square_size: int = 16
    seed: int = 1234
    min_distractors: int = 3
    max_distractors: int = 6

    def __post_init__(self) -> None:
        for key in ("num_train", "num_val"):
            if getattr(self, key) < 1:
                raise DataError(f"dataset.synthetic.{key}={getattr(self, key)} must be >= 1", reason="config")
        if self.square_size < 2 * PERIOD or self.square_size % PERIOD:
            raise DataError(f"square_size={self.square_size} must be a multiple of {PERIOD}, at least {2 * PERIOD}",
                            reason="config")
        if self.image_size < 8 * self.square_size:
            raise DataError(f"dataset.synthetic.image_size={self.image_size} must be >= 8 x square_size "
                            f"({8 * self.square_size}) for the zoom task", reason="config")
        if not 0 <= self.min_distractors <= self.max_distractors:
            raise DataError(f"min_distractors={self.min_distractors} / max_distractors={self.max_distractors}: "
                            "need 0 <= min <= max", reason="config")

    @classmethod
    def from_config(cls, cfg: Any) -> ZoomTaskParams:
        """From a `SyntheticDataConfig`-like object (num_train, num_val, image_size, seed, max_distractors)."""
        return cls(num_train=int(cfg.num_train), num_val=int(cfg.num_val), image_size=int(cfg.image_size),
                   seed=int(cfg.seed), max_distractors=max(cls.min_distractors, int(cfg.max_distractors)))

    def to_dict(self) -> dict[str, Any]:
        return {"generator": "synthetic_zoom", "generator_version": ZOOM_GENERATOR_VERSION, **asdict(self)}

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def draw_striped_square(draw: ImageDraw.ImageDraw, x: int, y: int, size: int, color: tuple[int, int, int],
                        stripes: str) -> None:
    """A size x size square at (x, y): white, with the coloured rows (or columns) 1, 2 of each period."""
    draw.rectangle((x, y, x + size - 1, y + size - 1), fill=WHITE)
    for k in range(0, size, PERIOD):
        if stripes == "horizontal":
            draw.rectangle((x, y + k + 1, x + size - 1, y + k + 2), fill=color)
        else:
            draw.rectangle((x + k + 1, y, x + k + 2, y + size - 1), fill=color)


def _corners(rng: random.Random, count: int, size: int, image_size: int) -> list[tuple[int, int]]:
    placed: list[tuple[int, int]] = []
    while len(placed) < count:
        x, y = rng.randint(1, image_size - size - 1), rng.randint(1, image_size - size - 1)
        if all(x + size + GAP <= px or px + size + GAP <= x or y + size + GAP <= py or py + size + GAP <= y
               for px, py in placed):
            placed.append((x, y))
    return placed


def make_zoom_example(params: ZoomTaskParams, split: str, index: int,
                      stripes: str | None = None) -> tuple[dict[str, Any], Image.Image]:
    """(GRIT_data row without image path / split, image) of example `index`; `stripes` forces the target's
    class on the same scene (the test compares the two classes of one layout)."""
    rng = random.Random(f"grit-synth-zoom:{params.seed}:{split}:{index}")
    drawn = rng.choice(STRIPES)
    stripes = stripes or drawn
    n = rng.randint(params.min_distractors, params.max_distractors)
    corners = _corners(rng, n + 1, params.square_size, params.image_size)
    image = Image.new("RGB", (params.image_size, params.image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    objects = []
    for k, (x, y) in enumerate(corners):
        color = TARGET_COLOR if k == 0 else rng.choice(DISTRACTOR_COLORS)
        pattern = stripes if k == 0 else rng.choice(STRIPES)
        draw_striped_square(draw, x, y, params.square_size, COLORS[color], pattern)
        objects.append({"color": color, "shape": "square", "stripes": pattern,
                        "box": [x, y, x + params.square_size, y + params.square_size]})
    box = objects[0]["box"]
    row = {
        "question": QUESTION, "answer": stripes, "width": params.image_size, "height": params.image_size,
        "bboxs": [box], "dataset": DATASET,
        "gold": {"boxes": [box], "labels": [f"{TARGET_COLOR} square"],
                 "rethink": f"Close up, the {TARGET_COLOR} square has {stripes} stripes.", "answer": stripes},
        "objects": objects,
    }
    return row, image


def _write_set(params: ZoomTaskParams, root: Path) -> None:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        with (root / f"{split}.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
            for index in range(params.num_train if split == "train" else params.num_val):
                row, image = make_zoom_example(params, split, index)
                name = f"{split}/{index:06d}.png"
                image.save(root / "images" / name, format="PNG", compress_level=6)
                handle.write(json.dumps({**row, "image": name, "split": split}) + "\n")
    (root / "params.json").write_text(json.dumps(params.to_dict(), indent=2, sort_keys=True) + "\n")


def generate_synthetic_zoom(params: ZoomTaskParams, out_dir: str | Path) -> SyntheticPaths:
    """The complete set for `params` under ``out_dir/zoom-<fingerprint>/``, generated unless already there
    (written into a temporary folder, then renamed: an existing folder is complete)."""
    paths, written = write_set_once(Path(out_dir).expanduser() / f"zoom-{params.fingerprint()}",
                                    lambda tmp: _write_set(params, tmp))
    if written:
        logger.info("generated the synthetic zoom set %s (%d train + %d val rows)", paths.root, params.num_train,
                    params.num_val)
    return paths


def ensure_synthetic_zoom(cfg: Any) -> SyntheticPaths:
    """Generate (once, cached by fingerprint) the zoom set a `SyntheticDataConfig`-like `cfg` describes."""
    return generate_synthetic_zoom(ZoomTaskParams.from_config(cfg), cfg.out_dir)
