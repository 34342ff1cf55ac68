"""A training run: build -> resume -> loop (`run.py`), and what it keeps: checkpoints, the prompt sampler, logging, the end-of-run summary."""
