"""Every place the toolkit writes next to a user's files leaves those files as they were.

The audit of rmtree / unlink / rename / open-for-write in src/ (tiny models: tests/models/test_tiny_safety.py):
- infer `out=` must not overwrite an existing file (before: `out=photo.jpg` overwrote the input image);
- judge.cache_path must not turn a user's sqlite database or file into a verdict cache (before: a table
  was added to any database, and WAL mode switched on);
- report `--out` must not overwrite files in a folder it did not write (tests/report/test_report_out_safety.py);
- the synthetic set never replaces a folder at its fingerprint path.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.data.synthetic import SyntheticParams, generate_synthetic
from grit_exp.errors import ConfigError, DataError, JudgeConfigError
from grit_exp.infer import Request, check_inputs
from grit_exp.judge.cache import JudgeCache
from tests.helpers.configs import compose_config


def test_infer_out_never_overwrites_a_file(tmp_path) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(photo)
    before = photo.read_bytes()
    cfg = compose_config("app", f"out={photo}")
    with pytest.raises(ConfigError, match=r"out=.*photo\.png.*never overwrites a file it did not write"):
        check_inputs(cfg, Request(image=str(photo), question="What is it?"))
    assert photo.read_bytes() == before


def test_judge_cache_path_on_a_users_database_is_refused(tmp_path) -> None:
    database = tmp_path / "experiments.db"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE runs (name TEXT)")
        connection.execute("INSERT INTO runs VALUES ('mine')")
    connection.close()
    before = database.read_bytes()
    with pytest.raises(JudgeConfigError, match=r"judge\.cache_path=.*experiments\.db.*not a judge verdict cache \(holds runs\)"):
        JudgeCache(database)
    assert database.read_bytes() == before and not Path(f"{database}-wal").exists()


def test_judge_cache_path_on_a_text_file_is_refused(tmp_path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a database\n" * 10)
    with pytest.raises(JudgeConfigError, match="not an sqlite database"):
        JudgeCache(notes)
    assert notes.read_text() == "my notes, not a database\n" * 10


def test_judge_cache_reopens_its_own_file(tmp_path) -> None:
    first = JudgeCache(tmp_path / "c.sqlite")
    first.put("key", "prompt", 1.0, "{score: 1}")
    first.close()
    assert JudgeCache(tmp_path / "c.sqlite").get_many("key", ["prompt"]) == {"prompt": (1.0, "{score: 1}")}


def test_synthetic_set_never_replaces_a_folder_at_its_path(tmp_path) -> None:
    params = SyntheticParams(num_train=2, num_val=1, image_size=48)
    taken = tmp_path / params.fingerprint()
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    with pytest.raises(DataError, match="delete the folder to regenerate it"):
        generate_synthetic(params, tmp_path)
    assert (taken / "mine.txt").read_text() == "keep" and sorted(p.name for p in taken.iterdir()) == ["mine.txt"]
