"""A `model.path` that cannot load is refused before anything loads, in one line naming `model.path`.

Before the fix: `model=qwen2_5_vl_3b model.path=/typo/ckpt` ended in a 30-line transformers traceback
("Repo id must be in the form ..."), and with the default (tiny) model group `model.path=/typo/ckpt`
built a random tiny model at that path and trained or evaluated on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from grit_exp.config.model import check_model_path, tiny_build_dir
from grit_exp.errors import ConfigError
from grit_exp.models import build_adapter
from tests.models.model_helpers import model_cfg

REPO = Path(__file__).resolve().parents[2]


def real_cfg(path: str | Path, family: str = "qwen2_5_vl"):
    builder = "tiny_qwen2_5_vl" if family == "qwen2_5_vl" else "tiny_internvl"
    return model_cfg(builder, path, tiny=False)


def entry(module: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    environment.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", f"grit_exp.{module}", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "real_accelerator" not in line]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("module", ["train", "evaluate", "infer"])
def test_a_missing_real_checkpoint_is_one_line_before_anything_runs(module, tmp_path) -> None:
    args = ["model=qwen2_5_vl_3b", "model.path=/typo/ckpt", f"hydra.run.dir={tmp_path / 'run'}"]
    if module == "infer":
        args += ["--image", str(tmp_path / "x.png"), "--question", "q"]
    line = one_error_line(entry(module, *args, cwd=tmp_path))
    assert line.startswith(f"grit_exp.{module}: error: model.path=/typo/ckpt: no such directory; expected a model "
                           "directory with config.json"), line
    assert "Hub id (org/name)" in line
    assert not (tmp_path / "run").exists()  # refused before Hydra made the run directory


def test_the_tiny_group_never_builds_into_a_users_path(tmp_path) -> None:
    typo = tmp_path / "typo" / "ckpt"
    line = one_error_line(entry("train", f"model.path={typo}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                                GRIT_EXP_CACHE=str(tmp_path / "cache")))
    assert f"model.path={typo} does not exist" in line and "model.tiny_builder=tiny_qwen2_5_vl" in line
    assert str(tmp_path / "cache" / "models" / "tiny_qwen2_5_vl") in line  # where it does build
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing built, no run directory


def test_an_offline_hub_id_outside_the_hf_cache_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(ConfigError, match=r"model\.path=org/typo looks like a Hugging Face Hub id, but it is not in "
                                          r"the local HF cache .*HF_HUB_OFFLINE=1"):
        build_adapter(real_cfg("org/typo"))
    assert check_model_path(real_cfg("org/typo")) is None  # entry validation: no hub lookup


def test_an_offline_hub_id_in_the_hf_cache_passes(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    repo = tmp_path / "hf" / "models--org--cached"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    (repo / "snapshots" / ("a" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("a" * 40) / "config.json").write_text("{}")
    assert check_model_path(real_cfg("org/cached"), hub=True) is None


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: None, "no such directory"),
    (lambda d: d.mkdir(), r"not a model directory \(no config\.json\)"),
    (lambda d: d.write_text("x"), "is a file, not a model directory"),
])
def test_a_local_path_that_holds_no_model_is_refused(tmp_path, make, message) -> None:
    target = tmp_path / "ckpt"
    make(target)
    with pytest.raises(ConfigError, match=rf"model\.path={target}.*{message}"):
        check_model_path(real_cfg(target), hub=True)


def test_a_checkpoint_of_another_family_or_in_the_remote_code_layout_is_refused(tmp_path) -> None:
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"")
    (target / "config.json").write_text(json.dumps({"model_type": "internvl_chat"}))
    with pytest.raises(ConfigError, match=r"holds a 'internvl_chat' model.*convert_internvl"):
        check_model_path(real_cfg(target, "internvl"))
    (target / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    with pytest.raises(ConfigError, match=r"holds a 'qwen2_5_vl' model, but model.family=internvl"):
        check_model_path(real_cfg(target, "internvl"))
    assert check_model_path(real_cfg(target, "qwen2_5_vl")) == target


def test_the_tiny_group_builds_only_into_its_own_cache_directory(tmp_path, tiny_model_paths) -> None:
    own = tiny_build_dir("tiny_qwen2_5_vl", tmp_path)
    assert check_model_path(model_cfg("tiny_qwen2_5_vl", own), tmp_path) is None  # built there on first use
    assert not own.exists()  # the check writes nothing
    checkpoint = tiny_model_paths["tiny_qwen2_5_vl"]  # an existing model directory: loaded as it is
    assert check_model_path(model_cfg("tiny_qwen2_5_vl", checkpoint), tmp_path) == checkpoint
    empty = tmp_path / "empty"
    empty.mkdir()  # an empty folder was built into before; now refused
    with pytest.raises(ConfigError, match=r"not a model directory \(no config\.json\)"):
        build_adapter(model_cfg("tiny_qwen2_5_vl", empty))
    assert list(empty.iterdir()) == []
    with pytest.raises(ConfigError, match="looks like a Hugging Face Hub id, and the model group"):
        check_model_path(model_cfg("tiny_qwen2_5_vl", "org/name"), tmp_path)
