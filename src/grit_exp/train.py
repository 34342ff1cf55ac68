"""`python -m grit_exp.train`: compose the config, validate it, then build and run the job.

A thin Hydra main: every decision lives in the modules it calls. `preflight` composes and checks the
config (literal keys, every validation) before Hydra writes or prints anything, so a bad combination
fails in a second with one line and exit code 2; the task function validates only what preflight
did not see here (each job of a sweep, a SLURM job, a SLURM task whose process count came from
SLURM). The toolkit's own errors during the run (`GritError`: data, replay, model path, judge) end
the same way, and are written to the run's log.
"""

from __future__ import annotations

import logging
import os

import hydra
from omegaconf import DictConfig

from grit_exp.api_keys import install_log_redaction
from grit_exp.cluster.slurm_env import apply_slurm_env
from grit_exp.config import TrainConfig, validate_train
from grit_exp.config.typed import to_typed
from grit_exp.hydra_app import CONF_DIR
from grit_exp.preflight import reported_user_errors, validated_before_hydra

log = logging.getLogger("grit_exp.train")


def validate_this_job(cfg: TrainConfig) -> None:
    """The training checks for the processes of this job (WORLD_SIZE: torchrun's, or SLURM's)."""
    validate_train(cfg, world_size=int(os.environ.get("WORLD_SIZE", "1")))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(composed: DictConfig) -> None:
    install_log_redaction()
    # a task of a multi-task SLURM job: RANK, WORLD_SIZE, MASTER_ADDR... from SLURM_* (returns what it set)
    world_from_slurm = apply_slurm_env()
    with reported_user_errors("train"):
        cfg = to_typed(composed, TrainConfig)  # the one conversion: the run reads typed attributes
        if world_from_slurm or not validated_before_hydra():
            validate_this_job(cfg)
        from grit_exp.training.run import run_training

        run_training(cfg)


if __name__ == "__main__":
    from grit_exp.preflight import preflight

    preflight(main, "train", str(CONF_DIR), validate_this_job, TrainConfig)
    main()
