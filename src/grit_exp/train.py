"""`python -m grit_exp.train`: compose the config, validate it, then build and run the job.

A thin Hydra main: every decision lives in the modules it calls. `preflight` composes and checks the
config (literal keys, every validation) before Hydra writes or prints anything, so a bad combination
fails in a second with one line and exit code 2; the toolkit's own errors during the run
(`GritError`: data, replay, model path, judge) end the same way, and are written to the run's log.
"""

from __future__ import annotations

import logging
import os

import hydra
from omegaconf import DictConfig

from grit_exp.api_keys import install_log_redaction
from grit_exp.cluster.slurm_env import apply_slurm_env
from grit_exp.config import validate
from grit_exp.errors import reported_user_errors
from grit_exp.hydra_app import CONF_DIR

log = logging.getLogger("grit_exp.train")


def validate_train(cfg: DictConfig) -> None:
    validate(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    install_log_redaction()
    apply_slurm_env()  # a task of a multi-task SLURM job: RANK, WORLD_SIZE, MASTER_ADDR... from SLURM_*
    with reported_user_errors("train"):
        validate_train(cfg)
        from grit_exp.training.run import run_training

        run_training(cfg)


if __name__ == "__main__":
    from grit_exp.preflight import preflight

    preflight(main, "train", str(CONF_DIR), validate_train)
    main()
