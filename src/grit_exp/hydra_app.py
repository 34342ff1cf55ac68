"""Where the Hydra entry points find their configs, and the one-time ConfigStore registration.

The config tree lives at the repository's top level (`conf/`). `CONF_DIR` is, in this order:
`GRIT_EXP_CONF` when set (e.g. a copy shipped with a run); the checkout's `conf/` when this file sits
in one (`src/grit_exp/` beside `pyproject.toml` and `conf/`: an editable install or a plain checkout);
else the copy a wheel ships inside the package (`grit_exp/conf`, mapped from `conf/` by setup.py).
Files that configs name relative to the repository (`launchers/deepspeed/*.json`) resolve against
`CONF_DIR.parent`; the wheel ships those next to its `conf/` too.

Left out: composing configs (Hydra's `@hydra.main` in each entry point) and validating them (`config`).
"""

from __future__ import annotations

import os
from pathlib import Path

from grit_exp.cluster.sweep import silence_launcher_schema_warning
from grit_exp.config import register_configs


def _conf_dir() -> Path:
    if "GRIT_EXP_CONF" in os.environ:
        return Path(os.environ["GRIT_EXP_CONF"])
    package = Path(__file__).resolve().parent
    checkout = package.parents[1]
    if package.parent.name == "src" and (checkout / "pyproject.toml").is_file() and (checkout / "conf").is_dir():
        return checkout / "conf"
    return package / "conf"


CONF_DIR = _conf_dir()

register_configs()
silence_launcher_schema_warning()  # the one deprecation warning of conf/hydra/launcher/submitit_slurm.yaml
