"""The training loop and its run management (checkpoints, sampler, logging, warm start)."""
