"""A non-editable install works: the wheel carries conf/ (and the DeepSpeed JSONs) and trains from anywhere.

The wheel is built from a copy of the files it is made of (so the checkout gets no build/ folder),
installed with `pip install --target`, and run from a folder outside the repository with only that
folder on PYTHONPATH ahead of the venv: `--cfg job` composes, and a 1-step CPU run of the default
(demo) config finishes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "setup.py", "README.md", "src", "conf", "launchers")
ONE_STEP = ["dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "trainer.max_steps=1",
            "trainer.prompts_per_step=2", "trainer.micro_batch_size=8", "trainer.warm_start_sft_steps=1",
            "trainer.warm_start_batch_size=2", "trainer.eval_every=1", "eval.sampled_k=0",
            "algorithm.num_generations=4", "rollout.max_new_tokens=6"]


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The folder the wheel was installed into (`pip install --no-deps --target`)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(base / "dist"), "."], cwd=source)
    (wheel,) = (base / "dist").glob("grit_exp-*.whl")
    run([*pip, "install", "--no-deps", "-q", "--target", str(base / "target"), str(wheel)], cwd=base)
    return base / "target"


def environment(target: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRIT_EXP_CONF")}
    return {**env, "PYTHONPATH": str(target), "GRIT_EXP_CACHE": str(cache)}


@pytest.mark.slow
def test_the_wheel_ships_its_configs_and_trains_outside_the_checkout(installed, grit_cache, tmp_path):
    env = environment(installed, grit_cache)
    where = run([sys.executable, "-c", "import grit_exp, grit_exp.hydra_app as h; print(grit_exp.__file__); "
                 "print(h.CONF_DIR)"], cwd=tmp_path, env=env).stdout.split()
    assert where == [str(installed / "grit_exp" / "__init__.py"), str(installed / "grit_exp" / "conf")]
    assert sorted(p.name for p in (installed / "grit_exp" / "launchers" / "deepspeed").glob("*.json")) == \
        sorted(p.name for p in (ROOT / "launchers" / "deepspeed").glob("*.json"))

    job = run([sys.executable, "-m", "grit_exp.train", "--cfg", "job"], cwd=tmp_path, env=env).stdout
    assert "model:" in job and "trainer:" in job

    run_dir = tmp_path / "run"
    run([sys.executable, "-m", "grit_exp.train", *ONE_STEP, f"hydra.run.dir={run_dir}"], cwd=tmp_path, env=env)
    assert (run_dir / "metrics.jsonl").is_file() and (run_dir / "checkpoints" / "step_1" / "model").is_dir()
