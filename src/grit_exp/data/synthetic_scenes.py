"""Seeded scenes of coloured shapes and their grounded questions (the synthetic generator's core).

One example = one image (plain background, non-overlapping squares / circles / triangles in a few
colours, drawn with PIL without anti-aliasing) + one GRIT_data row with exact, tight integer boxes
and a structured gold chain. Boxes are [x1, y1, x2, y2] with the end exclusive: a shape covering
pixel columns 10..19 has x1 = 10, x2 = 20 (PIL's `getbbox` convention, the continuous-coordinate
extent of the pixels). Three question kinds, each its own ``dataset`` name:

- ``synth_count``: "How many red squares are there?" -> "0".."max_count"; bboxs = the counted shapes;
  the asked (colour, shape) is one of the first ``count_targets`` pairs (red square first): 1 asks
  only about red squares, the easiest task (a tiny model learns to count it in a CPU demo's budget);
- ``synth_spatial``: "Is the red square to the left of the blue circle?" -> "yes" / "no"; bboxs = both;
- ``synth_ovd``: "Where is the green triangle?" -> "[x1, y1, x2, y2]"; bboxs = [that box].

Every example is a pure function of (seed, split, index, kind, params): no global random state.
Deliberately left out: file writing and caching (`grit_exp.data.synthetic`), textures, occlusion.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (30, 160, 60),
    "blue": (40, 80, 220),
}
SHAPES = ("square", "circle", "triangle")
BACKGROUND = (240, 240, 235)
KINDS = ("synth_count", "synth_spatial", "synth_ovd")
GAP = 2  # minimum free pixels between two shapes' footprints
RELATIONS = {  # relation -> (axis, sign): A <relation> B is true when sign * (A - B) along axis < 0
    "to the left of": (0, 1),
    "to the right of": (0, -1),
    "above": (1, 1),
    "below": (1, -1),
}


@dataclass(frozen=True)
class SceneParams:
    image_size: int = 112
    max_count: int = 4  # counting answers are 0..max_count
    max_distractors: int = 3  # shapes of other colour/shape combinations
    count_targets: int = 9  # counting questions ask about the first N (colour, shape) pairs of _combos()

    @property
    def min_shape(self) -> int:
        return max(6, self.image_size // 10)

    @property
    def max_shape(self) -> int:
        return max(self.min_shape, self.image_size // 5)


@dataclass
class Shape:
    color: str
    shape: str
    box: list[int]  # tight [x1, y1, x2, y2], end exclusive

    @property
    def label(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)


_Built = tuple[dict[str, Any], Image.Image, list[Shape]]


@dataclass
class Example:
    row: dict[str, Any]  # the GRIT_data JSON object, without the "image" path and "split"
    image: Image.Image


def plural(shape: str) -> str:
    return f"{shape}s"


def _combos() -> list[tuple[str, str]]:
    return [(color, shape) for color in COLORS for shape in SHAPES]


def _draw(draw: ImageDraw.ImageDraw, shape: str, x: int, y: int, size: int, fill: Any) -> None:
    end = (x + size - 1, y + size - 1)  # PIL's shape extents are inclusive
    if shape == "square":
        draw.rectangle((x, y, *end), fill=fill)
    elif shape == "circle":
        draw.ellipse((x, y, *end), fill=fill)
    elif shape == "triangle":
        draw.polygon([(x + (size - 1) / 2, y), (x, end[1]), (end[0], end[1])], fill=fill)
    else:
        raise ValueError(f"unknown shape {shape!r}; valid: {', '.join(SHAPES)}")


def _place(rng: random.Random, sizes: list[int], image_size: int) -> list[tuple[int, int]] | None:
    """Top-left corners for square footprints of `sizes`, at least GAP pixels apart; None if no fit."""
    placed: list[tuple[int, int, int]] = []
    for size in sizes:
        for _ in range(200):
            x = rng.randint(1, image_size - size - 1)
            y = rng.randint(1, image_size - size - 1)
            if all(
                x + size + GAP <= px or px + psize + GAP <= x or y + size + GAP <= py or py + psize + GAP <= y
                for px, py, psize in placed
            ):
                placed.append((x, y, size))
                break
        else:
            return None
    return [(x, y) for x, y, _ in placed]


def render_scene(
    rng: random.Random, combos: list[tuple[str, str]], params: SceneParams
) -> tuple[Image.Image, list[Shape]]:
    """Draw the given (colour, shape) list at random non-overlapping places; return the image and tight boxes."""
    size = params.image_size
    for _ in range(100):
        sizes = [rng.randint(params.min_shape, params.max_shape) for _ in combos]
        corners = _place(rng, sizes, size)
        if corners is not None:
            break
    else:
        raise ValueError(
            f"cannot place {len(combos)} shapes without overlap in a {size} px image; "
            "use a larger image_size or smaller max_count / max_distractors"
        )
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    shapes = []
    for (color, shape), (x, y), side in zip(combos, corners, sizes, strict=True):
        mask = Image.new("L", (size, size), 0)
        _draw(ImageDraw.Draw(mask), shape, x, y, side, 255)
        _draw(draw, shape, x, y, side, COLORS[color])
        bbox = mask.getbbox()
        assert bbox is not None, "a drawn shape has no pixels"
        shapes.append(Shape(color=color, shape=shape, box=list(bbox)))
    return image, shapes


def box_string(box: list[int] | list[float]) -> str:
    return "[" + ", ".join(str(v) for v in box) + "]"


def _reading_order(shapes: list[Shape]) -> list[Shape]:
    return sorted(shapes, key=lambda s: (s.box[1], s.box[0]))


def _count_example(rng: random.Random, params: SceneParams) -> _Built:
    combos = _combos()
    target = rng.choice(combos[: params.count_targets])
    count = rng.randint(0, params.max_count)
    others = [c for c in combos if c != target]
    distractors = [rng.choice(others) for _ in range(rng.randint(0, params.max_distractors))]
    image, shapes = render_scene(rng, [target] * count + distractors, params)
    counted = _reading_order(shapes[:count])
    color, shape = target
    noun = shape if count == 1 else plural(shape)
    rethink = f"There {'is' if count == 1 else 'are'} {count} {color} {noun}."
    row = {
        "question": f"How many {color} {plural(shape)} are there?",
        "answer": str(count),
        "bboxs": [s.box for s in counted],
        "gold": {
            "boxes": [s.box for s in counted],
            "labels": [s.label for s in counted],
            "rethink": rethink,
            "answer": str(count),
        },
    }
    return row, image, shapes


def _spatial_example(rng: random.Random, params: SceneParams) -> _Built:
    margin = max(4, params.image_size // 16)
    combos = _combos()
    first, second = rng.sample(combos, 2)
    others = [c for c in combos if c not in (first, second)]
    want_yes = rng.random() < 0.5
    while True:
        distractors = [rng.choice(others) for _ in range(rng.randint(0, min(2, params.max_distractors)))]
        image, shapes = render_scene(rng, [first, second, *distractors], params)
        a, b = shapes[0], shapes[1]
        usable = [r for r, (axis, _) in RELATIONS.items() if abs(a.center[axis] - b.center[axis]) >= margin]
        if usable:
            break
    relation = rng.choice(usable)
    axis, sign = RELATIONS[relation]
    holds = sign * (a.center[axis] - b.center[axis]) < 0
    if holds != want_yes:  # flip to the opposite relation on the same axis to balance yes / no
        relation = next(r for r, (ax, sg) in RELATIONS.items() if ax == axis and sg == -sign)
        holds = not holds
    row = {
        "question": f"Is the {a.label} {relation} the {b.label}?",
        "answer": "yes" if holds else "no",
        "bboxs": [a.box, b.box],
        "gold": {
            "boxes": [a.box, b.box],
            "labels": [a.label, b.label],
            "rethink": f"The {a.label} is {'' if holds else 'not '}{relation} the {b.label}.",
            "answer": "yes" if holds else "no",
        },
    }
    return row, image, shapes


def _ovd_example(rng: random.Random, params: SceneParams) -> _Built:
    combos = _combos()
    target = rng.choice(combos)
    others = [c for c in combos if c != target]
    distractors = [rng.choice(others) for _ in range(rng.randint(1, max(1, params.max_distractors)))]
    image, shapes = render_scene(rng, [target, *distractors], params)
    found = shapes[0]
    answer = box_string(found.box)
    row = {
        "question": f"Where is the {found.label}?",
        "answer": answer,
        "bboxs": [found.box],
        "gold": {
            "boxes": [found.box],
            "labels": [found.label],
            "rethink": f"I found the {found.label}.",
            "answer": answer,
        },
    }
    return row, image, shapes


_BUILDERS = {"synth_count": _count_example, "synth_spatial": _spatial_example, "synth_ovd": _ovd_example}


def make_example(seed: int, split: str, index: int, kind: str, params: SceneParams) -> Example:
    """The example number `index` of `split`: deterministic in all its arguments."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown synthetic question kind {kind!r}; valid: {', '.join(KINDS)}")
    rng = random.Random(f"grit-synth:{seed}:{split}:{index}:{kind}")
    row, image, shapes = _BUILDERS[kind](rng, params)
    row = {
        "question": row["question"],
        "answer": row["answer"],
        "width": params.image_size,
        "height": params.image_size,
        "bboxs": row["bboxs"],
        "dataset": kind,
        "gold": row["gold"],
        "objects": [{"color": s.color, "shape": s.shape, "box": s.box} for s in shapes],
    }
    return Example(row=row, image=image)


def kind_schedule(num_rows: int, weights: tuple[float, ...], seed: int, split: str) -> list[str]:
    """Exactly proportional question kinds (largest remainder), in a seeded shuffled order."""
    if len(weights) != len(KINDS) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(
            f"kind_weights={list(weights)} must be {len(KINDS)} non-negative numbers "
            f"(for {', '.join(KINDS)}) with a positive sum"
        )
    total = sum(weights)
    exact = [num_rows * w / total for w in weights]
    counts = [int(e) for e in exact]
    by_remainder = sorted(range(len(KINDS)), key=lambda i: (exact[i] - counts[i], -i), reverse=True)
    for i in by_remainder[: num_rows - sum(counts)]:
        counts[i] += 1
    kinds = [kind for kind, count in zip(KINDS, counts, strict=True) for _ in range(count)]
    random.Random(f"grit-synth-kinds:{seed}:{split}").shuffle(kinds)
    return kinds
