"""Where the Hydra entry points find their configs, and the one-time ConfigStore registration.

The config tree lives at the repository's top level (`conf/`); an editable install finds it
relative to this file. `GRIT_EXP_CONF` points elsewhere (e.g. a copy shipped with a run).
"""

from __future__ import annotations

import os
from pathlib import Path

from grit_exp.cluster.sweep import silence_launcher_schema_warning
from grit_exp.config import register_configs

CONF_DIR = Path(os.environ.get("GRIT_EXP_CONF", Path(__file__).resolve().parents[2] / "conf"))

register_configs()
silence_launcher_schema_warning()  # the one deprecation warning of conf/hydra/launcher/submitit_slurm.yaml
