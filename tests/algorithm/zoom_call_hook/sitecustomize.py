"""Loaded in every process of a zoom test run (PYTHONPATH): with GRIT_TEST_ZOOM_CALL set, every other completion
of each rollout (even local index; groups are whole on every process, so the same completions in any process
layout) writes a well-formed zoom call first, the rest sampled by the model as always (the sampler still draws
at every step). Test-only; the toolkit never imports it."""

from __future__ import annotations

import os

if os.environ.get("GRIT_TEST_ZOOM_CALL"):
    from grit_exp.rollout.seeded_sampling import PerRowSeededSampler

    _draw = PerRowSeededSampler.draw
    _call: list[int] = []
    _written: dict[tuple[int, int], int] = {}

    def _scripted_draw(self, scores, rows):
        if not _call:  # the call's token ids, comma-separated
            _call.extend(int(t) for t in os.environ["GRIT_TEST_ZOOM_CALL"].split(","))
        chosen = _draw(self, scores, rows).clone()
        for i, c in enumerate(rows):
            n = _written.get((id(self), c), 0)
            if c % 2 == 0 and n < len(_call):
                chosen[i] = _call[n]
            _written[(id(self), c)] = n + 1
        return chosen

    PerRowSeededSampler.draw = _scripted_draw
