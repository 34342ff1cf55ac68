"""Cluster glue that is not the training engine: the SLURM -> torch.distributed environment mapping."""
