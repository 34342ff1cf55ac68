"""Zoom turns (`rollout.zoom`): a box the model writes becomes an action; the region is cropped from the
original image and fed back as a new image turn, and the completion continues (issue #20).

Left out: rewarding tool use (grit_exp.rewards), scoring multi-turn completions (grit_exp.evaluation).
"""
