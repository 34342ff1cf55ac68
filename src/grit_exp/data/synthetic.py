"""The embedded default data: a seeded generator writing a grounded-VQA set in GRIT_data format.

`ensure_synthetic(cfg)` returns the paths of a complete set under ``out_dir/<fingerprint>/``::

    train.jsonl  val.jsonl  params.json  images/train/000000.png ...  images/val/000000.png ...

The fingerprint hashes the generator parameters and `GENERATOR_VERSION` (bump it whenever the
output for the same parameters changes). A set is written into a temporary folder next to it and
renamed into place, so an existing folder is always complete and a killed generation leaves at
most a ``.tmp-*`` folder behind; concurrent processes may race, the first rename wins. Rows are
the scenes of `grit_exp.data.synthetic_scenes`, with ``split`` set and a structured ``gold``
chain in original pixels. Same parameters -> byte-identical JSONL and PNG files.

Deliberately left out: reading the set back (the ordinary reader does that) and any image
augmentation.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grit_exp.data.synthetic_paths import SyntheticPaths, write_set_once
from grit_exp.data.synthetic_scenes import COLORS, KINDS, SHAPES, SceneParams, kind_schedule, make_example
from grit_exp.errors import DataError

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
DEFAULT_KIND_WEIGHTS = (0.6, 0.2, 0.2)  # synth_count, synth_spatial, synth_ovd: the demo measures counting
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that determines the generated files (all of it goes into the fingerprint)."""

    num_train: int = 2000
    num_val: int = 120
    image_size: int = 112
    seed: int = 1234
    kind_weights: tuple[float, float, float] = DEFAULT_KIND_WEIGHTS
    max_count: int = 4
    max_distractors: int = 3
    count_targets: int = 9

    def __post_init__(self) -> None:
        for key in ("num_train", "num_val"):
            if getattr(self, key) < 1:
                raise DataError(f"dataset.synthetic.{key}={getattr(self, key)} must be >= 1", reason="config")
        if self.image_size < 48:
            raise DataError(
                f"dataset.synthetic.image_size={self.image_size} must be >= 48 pixels", reason="config"
            )
        if not 0 <= self.max_count <= 9:
            raise DataError(f"dataset.synthetic.max_count={self.max_count} must be in 0..9", reason="config")
        if self.max_distractors < 1:
            raise DataError(
                f"dataset.synthetic.max_distractors={self.max_distractors} must be >= 1", reason="config"
            )
        n_pairs = len(COLORS) * len(SHAPES)
        if not 1 <= self.count_targets <= n_pairs:
            raise DataError(
                f"dataset.synthetic.count_targets={self.count_targets} must be in 1..{n_pairs} "
                "(how many colour/shape pairs counting questions ask about)", reason="config"
            )
        kind_schedule(1, self.kind_weights, 0, "check")  # raises ValueError on bad weights

    @classmethod
    def from_config(cls, cfg: Any) -> SyntheticParams:
        """From a `SyntheticDataConfig`-like object; kind_weights / max_count / max_distractors /
        count_targets are optional."""
        defaults = cls.__dataclass_fields__
        values: dict[str, Any] = {}
        for key, spec in defaults.items():
            value = getattr(cfg, key, None)
            if value is None:
                value = spec.default
            values[key] = tuple(float(v) for v in value) if key == "kind_weights" else int(value)
        return cls(**values)

    def scene(self) -> SceneParams:
        return SceneParams(
            image_size=self.image_size, max_count=self.max_count, max_distractors=self.max_distractors,
            count_targets=self.count_targets,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator_version": GENERATOR_VERSION,
            **asdict(self),
            "kind_weights": list(self.kind_weights),
        }

    def fingerprint(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]




def synthetic_rows(params: SyntheticParams, split: str) -> list[tuple[dict[str, Any], Any]]:
    """(GRIT_data JSON object, PIL image) for every row of `split`, in order; nothing is written."""
    num_rows = params.num_train if split == "train" else params.num_val
    kinds = kind_schedule(num_rows, params.kind_weights, params.seed, split)
    out = []
    for index, kind in enumerate(kinds):
        example = make_example(params.seed, split, index, kind, params.scene())
        row = example.row
        row = {
            "question": row["question"],
            "answer": row["answer"],
            "image": f"{split}/{index:06d}.png",
            "width": row["width"],
            "height": row["height"],
            "bboxs": row["bboxs"],
            "dataset": row["dataset"],
            "split": split,
            "gold": row["gold"],
            "objects": row["objects"],
        }
        out.append((row, example.image))
    return out


def _write_set(params: SyntheticParams, root: Path) -> None:
    for split in SPLITS:
        (root / "images" / split).mkdir(parents=True)
        with (root / f"{split}.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
            for row, image in synthetic_rows(params, split):
                image.save(root / "images" / row["image"], format="PNG", compress_level=6)
                handle.write(json.dumps(row) + "\n")
    (root / "params.json").write_text(json.dumps(params.to_dict(), indent=2, sort_keys=True) + "\n")


def generate_synthetic(params: SyntheticParams, out_dir: str | Path) -> SyntheticPaths:
    """The complete set for `params` under ``out_dir/<fingerprint>/``, generated unless already there."""
    started = time.perf_counter()
    paths, written = write_set_once(Path(out_dir).expanduser() / params.fingerprint(), lambda tmp: _write_set(params, tmp))
    if written:
        logger.info("generated the synthetic set %s (%d train + %d val rows, %s) in %.1f s", paths.root,
                    params.num_train, params.num_val, "/".join(KINDS), time.perf_counter() - started)
    return paths


def ensure_synthetic(cfg: Any) -> SyntheticPaths:
    """Generate (once, cached by fingerprint) the set a `SyntheticDataConfig`-like `cfg` describes
    (``task: zoom``: the zoom task of `grit_exp.data.synthetic_zoom`; the schema's enum refuses others)."""
    task = str(getattr(cfg, "task", "grit"))
    if task == "zoom":
        from grit_exp.data.synthetic_zoom import ensure_synthetic_zoom

        return ensure_synthetic_zoom(cfg)
    return generate_synthetic(SyntheticParams.from_config(cfg), cfg.out_dir)
