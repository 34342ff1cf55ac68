"""The GRIT_data download command: argument parsing and --help only (tests never touch the network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grit_exp.data.download import DEFAULT_REPO_ID, parse_args


def test_arguments_and_defaults() -> None:
    args = parse_args(["--root", "data/GRIT_data"])
    assert args.root == Path("data/GRIT_data") and args.repo_id == DEFAULT_REPO_ID == "yfan1997/GRIT_data"
    assert args.revision is None and args.include is None
    args = parse_args(["--root", "x", "--include", "*.jsonl", "--include", "README.md", "--revision", "main"])
    assert args.include == ["*.jsonl", "README.md"] and args.revision == "main"


def test_root_is_required(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args([])
    assert info.value.code == 2 and "--root" in capsys.readouterr().err


def test_help_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grit_exp.data.download", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "python -m grit_exp.data.download" in result.stdout and "--root" in result.stdout
