"""The `dataset` group's schema (conf/dataset/*.yaml) and its checks.

Left out: reading or generating rows (grit_exp.data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from omegaconf import MISSING

from grit_exp.errors import ConfigError

# What a reader does with a bad row: stop with its file:line, or skip it and count it. Functional form:
# OmegaConf checks a value by member name, and `raise` cannot be written as a class attribute.
OnError = StrEnum("OnError", [("raise", "raise"), ("skip", "skip")], module=__name__, qualname="OnError")


class SyntheticTask(StrEnum):
    grit = "grit"  # shapes: counting / spatial / box questions (grit_exp.data.synthetic)
    zoom = "zoom"  # striped squares only a native-resolution crop shows (grit_exp.data.synthetic_zoom)


@dataclass
class DataFileConfig:
    path: str = MISSING  # a GRIT_data JSONL file
    image_root: str = MISSING  # folder that the rows' relative `image` paths resolve against
    name: str | None = None  # optional label; rows keep their own `dataset` field


@dataclass
class SyntheticDataConfig:
    """The embedded default data: a seeded generator writing GRIT_data-format JSONL + PNG files."""

    enabled: bool = False
    task: SyntheticTask = SyntheticTask.grit
    out_dir: str = "${paths.cache_dir}/synthetic"
    num_train: int = 2000
    num_val: int = 120
    image_size: int = 112
    seed: int = 1234
    kind_weights: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])  # count / spatial / box questions
    max_count: int = 4  # counting answers are 0..max_count
    max_distractors: int = 3  # objects of another colour or shape per image, at most
    count_targets: int = 9  # counting questions ask about the first N colour/shape pairs (1: red squares only)


@dataclass
class DatasetConfig:
    name: str = MISSING
    train: list[DataFileConfig] = field(default_factory=list)
    eval: list[DataFileConfig] = field(default_factory=list)
    num_samples: int | None = None  # deterministic, seed-controlled subset of the train rows
    eval_num_samples: int | None = None  # the same for each eval file (quick evals)
    on_error: OnError = OnError("raise")
    synthetic: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)


def check_dataset(dataset: Any) -> None:
    """ConfigError naming the dataset.* key that makes no sense."""
    if dataset.num_samples is not None and dataset.num_samples < 1:
        raise ConfigError(f"dataset.num_samples={dataset.num_samples} must be >= 1 (or null for all rows)")
