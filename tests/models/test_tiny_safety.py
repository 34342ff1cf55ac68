"""`model.path` with a tiny model group never deletes or overwrites a directory grit-exp did not create.

Before the fix, `ensure_tiny_model` removed any directory without its marker (a trained checkpoint, a
user's folder) and built a random model there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.errors import ConfigError
from grit_exp.models.tiny import COMPLETE_MARKER, ensure_tiny_model

REPO = Path(__file__).resolve().parents[2]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _checkpoint_copy(tiny_dir: Path, dst: Path) -> Path:
    """A complete model directory as training writes it: the tiny model's files, without the marker."""
    shutil.copytree(tiny_dir, dst, ignore=shutil.ignore_patterns(COMPLETE_MARKER))
    return dst


def test_a_users_folder_survives_with_a_clear_error(tmp_path) -> None:
    folder = tmp_path / "my_results"
    folder.mkdir()
    (folder / "notes.txt").write_text("three weeks of work")
    (folder / "sub").mkdir()
    (folder / "sub" / "table.csv").write_text("a,b\n1,2\n")
    before = _snapshot(folder)
    with pytest.raises(ConfigError, match=r"model\.path=.*my_results: not a complete model directory \(no config\.json\)"):
        ensure_tiny_model("tiny_qwen2_5_vl", folder)
    assert _snapshot(folder) == before


def test_a_config_without_weights_is_refused_and_kept(tmp_path) -> None:
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with pytest.raises(ConfigError, match="no weights"):
        ensure_tiny_model("tiny_qwen2_5_vl", folder)
    assert (folder / "config.json").is_file()


def test_a_file_is_refused_and_kept(tmp_path) -> None:
    file = tmp_path / "weights.bin"
    file.write_bytes(b"\x00" * 16)
    with pytest.raises(ConfigError, match="is a file"):
        ensure_tiny_model("tiny_internvl", file)
    assert file.read_bytes() == b"\x00" * 16


def test_a_hub_id_with_the_tiny_group_is_refused_not_built(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="looks like a Hugging Face Hub id.*model=qwen2_5_vl_3b"):
        ensure_tiny_model("tiny_qwen2_5_vl", "yfan1997/GRIT-20-Qwen2.5-VL-3B")
    assert list(tmp_path.iterdir()) == []  # no random model built under ./yfan1997/


def test_a_trained_checkpoint_is_loaded_as_it_is(tiny_model_paths, tmp_path) -> None:
    checkpoint = _checkpoint_copy(tiny_model_paths["tiny_qwen2_5_vl"], tmp_path / "step_30" / "model")
    before = _snapshot(checkpoint)
    assert ensure_tiny_model("tiny_qwen2_5_vl", checkpoint) == checkpoint
    assert _snapshot(checkpoint) == before
    assert not (checkpoint / COMPLETE_MARKER).exists()


def test_a_checkpoint_of_the_other_family_is_refused(tiny_model_paths, tmp_path) -> None:
    checkpoint = _checkpoint_copy(tiny_model_paths["tiny_internvl"], tmp_path / "internvl_ckpt")
    before = _snapshot(checkpoint)
    with pytest.raises(ConfigError, match="holds a 'internvl' model"):
        ensure_tiny_model("tiny_qwen2_5_vl", checkpoint)
    assert _snapshot(checkpoint) == before


def test_builds_into_a_new_or_empty_directory_and_replaces_only_its_own_old_build(tmp_path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (ensure_tiny_model("tiny_qwen2_5_vl", empty) / "config.json").is_file()
    marker = empty / COMPLETE_MARKER
    marker.write_text("tiny_qwen2_5_vl v0 seed 0")  # an older build of the toolkit's own
    (empty / "stale.txt").write_text("left by the old build")
    ensure_tiny_model("tiny_qwen2_5_vl", empty)
    assert not (empty / "stale.txt").exists() and marker.read_text().startswith("tiny_qwen2_5_vl v")
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]  # no temp or trash directory left behind


def test_infer_on_a_checkpoint_path_keeps_the_checkpoint(tiny_model_paths, tmp_path) -> None:
    """The reported trap: `make train`, then `python -m grit_exp.infer model.path=<run>/checkpoints/.../model`."""
    checkpoint = _checkpoint_copy(tiny_model_paths["tiny_qwen2_5_vl"], tmp_path / "run" / "checkpoints" / "step_30" / "model")
    before = _snapshot(checkpoint)
    image = tmp_path / "img.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(image)
    proc = subprocess.run(
        [sys.executable, "-m", "grit_exp.infer", "--image", str(image), "--question", "How many?",
         f"model.path={checkpoint}", "rollout.max_new_tokens=4", f"hydra.run.dir={tmp_path / 'out'}"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _snapshot(checkpoint) == before
    record = json.loads((tmp_path / "out" / "inference.json").read_text())
    assert record["model_path"] == str(checkpoint)
