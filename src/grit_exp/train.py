"""`python -m grit_exp.train`: compose the config, validate it, then build and run the job.

A thin Hydra main: every decision lives in the modules it calls. Validation runs before any data
is generated or any model is loaded, so a bad combination fails in a second.
"""

from __future__ import annotations

import logging
import os

import hydra
from omegaconf import DictConfig

from grit_exp.config import validate
from grit_exp.hydra_app import CONF_DIR
from grit_exp.judge.secrets import install_log_redaction

log = logging.getLogger("grit_exp.train")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    install_log_redaction()
    validate(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")))
    from grit_exp.training.run import run_training

    run_training(cfg)


if __name__ == "__main__":
    main()
