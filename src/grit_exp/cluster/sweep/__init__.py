"""Hydra multirun sweeps: what each job records about itself (job_record) and the sweep summary (summary).

The Hydra side (the sweeper that writes the summary, the SLURM launcher that survives a dead job)
lives in `hydra_plugins.grit_exp_sweep`, where Hydra discovers plugins; it calls into this package.
"""

import warnings


def silence_launcher_schema_warning() -> None:
    """conf/hydra/launcher/submitit_slurm.yaml has the name of hydra-submitit-launcher's own config, so
    that `hydra/launcher=submitit_slurm` takes its values from cluster.slurm; Hydra checks it against
    the plugin's schema (kept: a misspelled key fails) and warns that such matching is deprecated.
    Called by grit_exp.hydra_app (the entry points) and by the launcher module (inside each job)."""
    warnings.filterwarnings(
        "ignore", message=r"\s*'hydra/launcher/submitit_slurm' is validated against ConfigStore schema",
        category=UserWarning,
    )
