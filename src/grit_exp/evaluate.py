"""`python -m grit_exp.evaluate`: compose conf/eval.yaml, validate it, evaluate, write the run directory.

A thin Hydra main: greedy evaluation of a model (`rollout=hf`, the default) or scoring of recorded
completions (`rollout=replay rollout.path=FILE.jsonl`, no model loaded) on the configured eval sets.
Writes samples.jsonl, metrics.json, metrics.jsonl, report.html, images/ and run_info.json into the
Hydra run directory. Several processes: `torchrun --nproc_per_node N -m grit_exp.evaluate ...`, or the
tasks of a SLURM job step (`srun -n N python -m grit_exp.evaluate ...`: SLURM's variables are mapped to
torch.distributed's once, as `grit_exp.train` does).
`preflight` checks the config before Hydra writes anything (the task function validates only the
jobs preflight did not see here: each job of a sweep); the toolkit's own errors (`GritError`) end
with one line on stderr, in the run's log, and exit code 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from grit_exp.api_keys import install_log_redaction
from grit_exp.cluster.slurm_env import apply_slurm_env
from grit_exp.config import EvalConfig, validate_eval
from grit_exp.config.typed import to_typed
from grit_exp.hydra_app import CONF_DIR
from grit_exp.preflight import reported_user_errors, validated_before_hydra

log = logging.getLogger("grit_exp.evaluate")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
def main(composed: DictConfig) -> None:
    install_log_redaction()
    # a task of a multi-task SLURM job step: RANK, WORLD_SIZE, MASTER_ADDR... from SLURM_* (as grit_exp.train)
    apply_slurm_env()
    with reported_user_errors("evaluate"):
        cfg = to_typed(composed, EvalConfig)  # the one conversion: the evaluation reads typed attributes
        if not validated_before_hydra():
            validate_eval(cfg)
        from grit_exp.evaluation.runner import run_evaluation

        run_dir = Path(HydraConfig.get().runtime.output_dir)
        run_evaluation(cfg, run_dir)
    log.info("evaluation written to %s", run_dir)


if __name__ == "__main__":
    from grit_exp.preflight import preflight

    preflight(main, "eval", str(CONF_DIR), validate_eval, EvalConfig)
    main()
