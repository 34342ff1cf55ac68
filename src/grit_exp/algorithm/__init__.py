"""The `algorithm` config group's code: group advantages, policy losses, the GRPO step, SFT, dynamic sampling."""
