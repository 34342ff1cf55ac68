"""Test helper (imported by name, or by spread_on_one_dataset/sitecustomize.py in torchrun's processes):
faults and shapes that multi-process tests inject into the real package without changing it.

Each hook is switched on by an environment variable and patches a module right after it is first
imported (`patch_on_import`), so a process that does not import it pays nothing:
- GRIT_TEST_ONE_TOKEN_KEYS (JSON list of row keys): every completion of those rows is cut to its first
  token by the HF rollout (the same rows in a 1-process run and on whichever rank draws them);
- GRIT_TEST_SLOW_RANK ("rank:call:seconds"): that rank sleeps before its call-th metrics average (a
  collective), as a rank stuck in other work would;
- GRIT_TEST_SLOW_WARM_START (seconds): the warm start's SFT loop sleeps that long first;
- GRIT_TEST_SLOW_CHECKPOINT (seconds): rank 0's writing of a checkpoint's model directory sleeps that long first.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import time
from collections.abc import Callable


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs `patch(module)` right after `name` is executed, once."""

    def __init__(self, name: str, patch: Callable) -> None:
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        from importlib.util import find_spec

        spec = find_spec(fullname)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            self.patch(module)

        spec.loader.exec_module = exec_module
        return spec


def patch_on_import(name: str, patch: Callable) -> None:
    if name in sys.modules:
        patch(sys.modules[name])
    else:
        sys.meta_path.insert(0, PatchOnImport(name, patch))


def _one_token(module) -> None:
    keys = {tuple(k) for k in json.loads(os.environ["GRIT_TEST_ONE_TOKEN_KEYS"])}
    generate = module.HFRollout.generate

    def cut(self, model, rows, *args, **kwargs):
        rollout = generate(self, model, rows, *args, **kwargs)
        for i, row in enumerate(rollout.rows):
            if tuple(row.key) in keys:
                rollout.completion_mask[i, 1:] = 0
        return rollout

    module.HFRollout.generate = cut


def _slow_rank(module) -> None:
    rank, call, seconds = (float(x) for x in os.environ["GRIT_TEST_SLOW_RANK"].split(":"))
    average, calls = module.average_metrics, []

    def slow(metrics):
        calls.append(1)
        if int(os.environ.get("RANK", "0")) == int(rank) and len(calls) == int(call):
            time.sleep(seconds)
        return average(metrics)

    module.average_metrics = slow


def _slow_warm_start(module) -> None:
    run_sft = module.run_sft

    def slow(*args, **kwargs):
        time.sleep(float(os.environ["GRIT_TEST_SLOW_WARM_START"]))
        return run_sft(*args, **kwargs)

    module.run_sft = slow


def _slow_checkpoint(module) -> None:
    write_model = module._write_model

    def slow(*args, **kwargs):
        time.sleep(float(os.environ["GRIT_TEST_SLOW_CHECKPOINT"]))
        return write_model(*args, **kwargs)

    module._write_model = slow


def install() -> None:
    """The hooks the environment asks for."""
    if os.environ.get("GRIT_TEST_ONE_TOKEN_KEYS"):
        patch_on_import("grit_exp.rollout.hf", _one_token)
    if os.environ.get("GRIT_TEST_SLOW_RANK"):
        patch_on_import("grit_exp.cluster.collectives", _slow_rank)
    if os.environ.get("GRIT_TEST_SLOW_WARM_START"):
        patch_on_import("grit_exp.algorithm.sft", _slow_warm_start)
    if os.environ.get("GRIT_TEST_SLOW_CHECKPOINT"):
        patch_on_import("grit_exp.training.checkpoint", _slow_checkpoint)
