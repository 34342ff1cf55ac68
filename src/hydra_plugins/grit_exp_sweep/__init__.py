"""grit-exp's Hydra plugins (Hydra discovers plugins only under the `hydra_plugins` namespace).

`sweeper.SummarizingSweeper` (conf/hydra/sweeper/grit.yaml, the default of conf/train.yaml) and
`slurm_launcher.TolerantSlurmLauncher` (conf/hydra/launcher/submitit_slurm.yaml). Imported by Hydra
at every start-up, so nothing heavy is imported at module level.
"""
