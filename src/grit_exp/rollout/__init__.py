"""Rollouts: completions for prompts, from a live model (`hf`) or from recorded files (`replay`)."""
