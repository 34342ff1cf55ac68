"""Test helper (imported by name): run `python -m grit_exp.train` under torchrun on CPU processes (gloo),
with the test-only reward term and fault hooks loaded in every process (spread_on_one_dataset/
sitecustomize.py, fault_hooks.py). A run that hangs is ended, workers included, after `timeout` seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITECUSTOMIZE = ROOT / "tests" / "training" / "spread_on_one_dataset"


def launch(processes: int, cache: Path, args: list[str], env: dict[str, str] | None = None,
           timeout: float = 600) -> tuple[int, str]:
    """(exit code, output) of `torchrun --nproc_per_node processes -m grit_exp.train *args`."""
    launcher = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SITECUSTOMIZE),
           **(env or {})}
    proc = subprocess.Popen([launcher, "--standalone", "--nproc_per_node", str(processes), "-m", "grit_exp.train",
                             *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # a hang: torchrun's workers run in sessions of their own, end them too
        import psutil

        for worker in psutil.Process(proc.pid).children(recursive=True):
            worker.kill()
        proc.kill()
        raise
    return proc.returncode, out
