"""A real SLURM cluster for the tests in this folder, and helpers to run sweeps through it.

`slurm_conf` uses the cluster that `SLURM_CONF` points to (CI: `make slurm-up`) when it answers;
otherwise, with SLURM installed and root, it starts one with launchers/slurm/slurm-up.sh in a
scratch directory on its own ports and stops it at the end; otherwise the tests skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _answers(conf: str) -> bool:
    try:
        out = subprocess.run(["scontrol", "ping"], env={**os.environ, "SLURM_CONF": conf},
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "UP" in out.stdout


@pytest.fixture(scope="session")
def slurm_conf() -> str:
    given = os.environ.get("SLURM_CONF")
    if given and shutil.which("scontrol") and _answers(given):
        yield given
        return
    missing = [p for p in ("slurmctld", "slurmd", "sbatch", "munged") if not shutil.which(p)]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} missing): run `make slurm-up` as root "
                    "(it installs Debian's slurm packages) and export the SLURM_CONF it prints")
    if os.geteuid() != 0:
        pytest.skip("no SLURM cluster answers at $SLURM_CONF and starting one needs root (make slurm-up)")
    # not under pytest's tmp dir: it is private to root (mode 700) and munged runs as user munge
    state = Path(tempfile.mkdtemp(prefix="grit-slurm-test-"))
    state.chmod(0o755)
    env = {**os.environ, "GRIT_SLURM_DIR": str(state), "GRIT_SLURM_CTLD_PORT": "6917", "GRIT_SLURM_SLURMD_PORT": "6918"}
    up = subprocess.run(["bash", str(ROOT / "launchers/slurm/slurm-up.sh")], env=env, capture_output=True, text=True,
                        timeout=300)
    if up.returncode != 0:
        pytest.skip(f"SLURM could not start: {up.stderr.strip().splitlines()[-1] if up.stderr.strip() else up.returncode}")
    conf = up.stdout.strip().splitlines()[-1].removeprefix("export SLURM_CONF=")
    try:
        yield conf
    finally:
        subprocess.run(["bash", str(ROOT / "launchers/slurm/slurm-down.sh"), "--purge"], env=env, capture_output=True,
                       timeout=120)


@pytest.fixture()
def sweep_env(slurm_conf, grit_cache, tiny_model_paths) -> dict[str, str]:
    """Environment of a sweep's driver (and so of its jobs): the test's cache, this cluster, offline."""
    return {**os.environ, "SLURM_CONF": slurm_conf, "GRIT_EXP_CACHE": str(grit_cache), "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
