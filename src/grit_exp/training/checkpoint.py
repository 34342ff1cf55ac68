"""Atomic checkpoints: written to a temporary directory, then renamed to `step_<N>`.

A checkpoint holds the model (safetensors via save_pretrained; LoRA adapters as adapters), the
optimizer and scheduler state, every process's RNG states (python, numpy, torch CPU and CUDA), the sampler
position, the step, and any extra trainer state. A save killed half-way leaves only a `.tmp-*`
directory, which is ignored and cleaned; the latest complete checkpoint is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step_(\d+)$")
STATE_FILE = "trainer_state.pt"
DONE_FILE = "checkpoint.json"


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    checkpoints_dir: Path,
    step: int,
    model: torch.nn.Module,
    trainer_state: dict[str, Any],
    keep_last: int,
) -> Path:
    """Write `checkpoints_dir/step_<step>` atomically and prune to the newest `keep_last`.

    `trainer_state` must hold "rng_per_rank": the `rng_state()` of every process, in rank order."""
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    final = checkpoints_dir / f"step_{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-step_{step}-", dir=checkpoints_dir))
    try:
        model.save_pretrained(tmp / "model", safe_serialization=True)
        torch.save({**trainer_state, "step": step}, tmp / STATE_FILE)
        (tmp / DONE_FILE).write_text(json.dumps({"step": step, "complete": True}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(checkpoints_dir, keep_last)
    return final


def complete_checkpoints(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for child in checkpoints_dir.iterdir():
        m = STEP_DIR.match(child.name)
        if m and (child / DONE_FILE).exists() and (child / STATE_FILE).exists():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    found = complete_checkpoints(checkpoints_dir)
    return found[-1][1] if found else None


def prune(checkpoints_dir: Path, keep_last: int) -> None:
    for _, path in complete_checkpoints(checkpoints_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)
    for stale in checkpoints_dir.glob(".tmp-step_*"):
        shutil.rmtree(stale, ignore_errors=True)


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / STATE_FILE, weights_only=False)


def model_dir(checkpoint: Path) -> Path:
    """The checkpoint's model, loadable with `from_pretrained` (LoRA: the adapters only)."""
    return checkpoint / "model"
