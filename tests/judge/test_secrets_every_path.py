"""A literal judge key is refused whichever way the config reaches Hydra, before anything is written or
printed: command line, experiment file, saved config (`--config-path RUN/.hydra --config-name config`),
`--cfg job|all`, `--info config`, and `--multirun`. Real `python -m grit_exp.train` subprocesses.

Before the fix the refusal was a Hydra callback declared in conf/train.yaml: a saved config.yaml has no
hydra section, so the run went ahead and wrote the key into .hydra/*.yaml; `--cfg job` printed it; an
experiment file chosen in a sweep reached multirun.yaml and the jobs' configs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-proj-0123456789abcdefghijKLMNOP"


def train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grit_exp.train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def assert_refused(proc: subprocess.CompletedProcess, cwd: Path) -> None:
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "refused to start" in proc.stderr and "judge.api_key" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    written = [p for p in cwd.rglob("*") if p.is_file() and KEY in p.read_text(errors="replace")]
    assert written == [p for p in written if p.parent.name in ("experiment", "saved_hydra")]  # only the inputs
    assert not (cwd / "outputs").exists() and not (cwd / "multirun").exists()


@pytest.fixture
def leaky_experiment(tmp_path: Path) -> Path:
    folder = tmp_path / "extra_conf"
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "leaky.yaml").write_text(f"# @package _global_\njudge:\n  kind: openai\n  api_key: {KEY}\n")
    (folder / "experiment" / "plain.yaml").write_text("# @package _global_\nseed: 3\n")
    return folder


@pytest.fixture
def saved_config(tmp_path: Path) -> Path:
    """A run's saved .hydra/config.yaml (no hydra section) holding a literal key."""
    shown = train("--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    folder = tmp_path / "saved_hydra"
    folder.mkdir()
    text = shown.stdout.replace("  api_key: null\n", f"  api_key: {KEY}\n", 1)
    assert KEY in text
    (folder / "config.yaml").write_text(text)
    return folder


@pytest.mark.parametrize("mode", [[], ["--cfg", "job"], ["--cfg", "all"], ["--info", "config"], ["-m"]])
def test_command_line(tmp_path, mode) -> None:
    assert_refused(train(*mode, "judge=openai", f"judge.api_key={KEY}", cwd=tmp_path), tmp_path)


@pytest.mark.parametrize("mode", [[], ["--cfg", "job"]])
def test_experiment_file(tmp_path, leaky_experiment, mode) -> None:
    assert_refused(train(*mode, "--config-dir", str(leaky_experiment), "experiment=leaky", cwd=tmp_path), tmp_path)


def test_experiment_file_in_a_sweep(tmp_path, leaky_experiment) -> None:
    proc = train("-m", "--config-dir", str(leaky_experiment), "experiment=plain,leaky", cwd=tmp_path)
    assert_refused(proc, tmp_path)
    assert "sweep job experiment=leaky" in proc.stderr


@pytest.mark.parametrize("mode", [[], ["--cfg", "job"], ["-m"]])
def test_saved_config(tmp_path, saved_config, mode) -> None:
    assert_refused(train(*mode, "--config-path", str(saved_config), "--config-name", "config", cwd=tmp_path), tmp_path)


def test_a_key_from_the_environment_is_accepted(tmp_path) -> None:
    proc = train("--cfg", "job", "judge=openai", "judge.api_key=${oc.env:MY_JUDGE_KEY}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "api_key: ${oc.env:MY_JUDGE_KEY}" in proc.stdout
