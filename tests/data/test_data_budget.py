"""A data budget above the demo's generated set generates that many rows, so the design card's sweep
`-m dataset.num_samples=20,500,7000` runs on the embedded default; with real files the budget is a subset."""

from __future__ import annotations

import pytest

from grit_exp.data.reader import load_dataset_splits
from grit_exp.errors import DataError
from tests.helpers.configs import compose_config


def dataset_cfg(*overrides: str):
    return compose_config("train", *overrides).dataset


def test_budget_above_the_generated_set_generates_more_rows(grit_cache):
    cfg = dataset_cfg("dataset.synthetic.num_train=12", "dataset.synthetic.num_val=2", "dataset.num_samples=20")
    rows, _ = load_dataset_splits(cfg, seed=0)
    assert len(rows) == 20
    smaller, _ = load_dataset_splits(dataset_cfg("dataset.synthetic.num_train=12", "dataset.synthetic.num_val=2",
                                                 "dataset.num_samples=5"), seed=0)
    assert len(smaller) == 5


def test_budget_above_real_files_is_an_error(tmp_path, grit_cache):
    from grit_exp.data.synthetic import ensure_synthetic

    cfg = dataset_cfg("dataset.synthetic.num_train=6", "dataset.synthetic.num_val=2")
    paths = ensure_synthetic(cfg.synthetic)
    real = dataset_cfg("dataset.synthetic.enabled=false", "dataset.num_samples=50",
                       f"+dataset.train=[{{path: {paths.train_jsonl}, image_root: {paths.image_root}}}]")
    with pytest.raises(DataError, match="dataset.num_samples=50"):
        load_dataset_splits(real, seed=0)
