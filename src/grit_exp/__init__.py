"""grit-exp: train and evaluate multimodal LLMs that reason with grounded evidence (GRIT, GRPO-GR)."""

__version__ = "0.1.0"
