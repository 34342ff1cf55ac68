"""The `cluster` config group's code: the training engine (accelerate + DeepSpeed), the one collective
layer over accelerate that training and evaluation share, the SLURM environment mapping and Hydra
multirun sweeps (`sweep/`)."""
