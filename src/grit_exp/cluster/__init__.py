"""The `cluster` config group's code: the training engine (accelerate + DeepSpeed), the collectives every
process uses, the SLURM environment mapping and Hydra multirun sweeps (`sweep/`)."""
