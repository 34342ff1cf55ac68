"""Images where the rows say, checked before a run starts: a data file whose image folder is missing (or holds
none of its images) fails at once with one line naming the folder and paths.data_root; a few missing images
of an eval file stay counted per row, as evaluation records them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grit_exp.data.reader import load_dataset_splits
from grit_exp.errors import DataError
from grit_exp.evaluation.items import load_eval_items
from tests.helpers.configs import compose_config
from tests.helpers.grit_data_layout import write_grit_data_root

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def grit_root(tmp_path: Path) -> Path:
    return write_grit_data_root(tmp_path / "GRIT_data", train_rows=3)


def dataset(name: str, root: Path):
    return compose_config("train", f"dataset={name}", f"paths.data_root={root}").dataset


def test_a_missing_eval_image_folder_is_an_error_naming_it(grit_root):
    shutil.rmtree(grit_root / "gqa")
    with pytest.raises(DataError) as info:  # before: 2 items, both marked image_missing, scored as nothing
        load_eval_items(dataset("grit_eval", grit_root), seed=0)
    message = str(info.value)
    assert f"image folder {grit_root / 'gqa'} does not exist" in message
    assert str(grit_root / "gqa_val.jsonl") in message and "paths.data_root" in message and "\n" not in message
    assert info.value.reason == "missing_image_folder"


def test_a_folder_holding_none_of_the_images_is_an_error(grit_root):
    nested = grit_root / "mme" / "MME_Benchmark"  # images one folder too deep
    nested.mkdir()
    for image in (grit_root / "mme").glob("*.png"):
        image.rename(nested / image.name)
    with pytest.raises(DataError, match=r"image folder .*/mme holds none of the 4 images its rows name \(the first: '0000.png'\)"):
        load_eval_items(dataset("grit_eval", grit_root), seed=0)


def test_a_few_missing_eval_images_are_still_counted_not_refused(grit_root):
    (grit_root / "vsr" / "000000296471.jpg").unlink()  # the first vsr_val row's image
    items, _ = load_eval_items(dataset("grit_eval", grit_root), seed=0)
    vsr = [item for item in items if item.set_name == "vsr_val"]
    assert [item.image_missing for item in vsr] == [True, False]


def test_training_data_names_the_missing_training_folder(grit_root):
    shutil.rmtree(grit_root / "tallyqa")
    with pytest.raises(DataError, match=r"image folder \S+/tallyqa does not exist.*paths\.data_root"):
        load_dataset_splits(dataset("grit20", grit_root), seed=0)
    cfg = dataset("grit20", grit_root)
    assert cfg.train[0].image_root == str(grit_root / "tallyqa")


def test_evaluate_stops_in_one_line_before_the_model_loads(grit_root, tmp_path):
    shutil.rmtree(grit_root / "ovd_position")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRIT_EXP_CACHE": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "grit_exp.evaluate", "dataset=grit_eval", f"paths.data_root={grit_root}",
         f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if "ovd_position" in line]
    assert len(errors) == 1 and f"image folder {grit_root / 'ovd_position'} does not exist" in errors[0]
    assert not (tmp_path / "cache" / "models").exists(), "stopped before building or loading a model"
