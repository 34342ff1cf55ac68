"""Atomic checkpoints: `checkpoints/step_<N>/{model,state}`, written to a temporary directory, then renamed.

- `model/`: a complete Hugging Face model directory (weights consolidated from the engine's shards,
  config, generation config, processor, tokenizer), loadable by `from_pretrained` and usable as
  `model.path`. With LoRA it holds the merged weights and `adapter/` beside it the PEFT adapters.
- `state/`: the engine's state as accelerate writes it (model and optimizer, as DeepSpeed shards
  under ZeRO, one RNG file per process) plus `trainer_state.pt` (step, scheduler, sampler, number
  of processes).
Every process writes its part into the same temporary directory (rank 0 chooses it); rank 0 adds
the model directory and the marker, renames, and prunes to `keep_last`. A save killed half-way
leaves only a `.tmp-*` directory, which is ignored and later removed; only directories named
`step_<N>` or `.tmp-step_<N>-*` inside the run's own `checkpoints/` are ever deleted.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step_(\d+)$")
TMP_PREFIX = ".tmp-step_"
TRAINER_STATE = "trainer_state.pt"
DONE_FILE = "checkpoint.json"


def save_checkpoint(engine: Any, adapter: Any, policy: torch.nn.Module, checkpoints_dir: Path, step: int,
                    trainer_state: dict[str, Any], keep_last: int) -> Path:
    """Write `checkpoints_dir/step_<step>` (a collective: every process calls it)."""
    final = checkpoints_dir / f"step_{step}"
    tmp = None
    if engine.is_main:
        checkpoints_dir.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{step}-", dir=checkpoints_dir)
    tmp = Path(engine.broadcast_object(tmp))
    engine.save_state(tmp / "state")
    state_dict = engine.full_state_dict(policy)
    if engine.is_main:
        try:
            _write_model(adapter, engine.unwrap(policy), state_dict, tmp)
            torch.save({**trainer_state, "step": step, "world_size": engine.world_size}, tmp / "state" / TRAINER_STATE)
            (tmp / DONE_FILE).write_text(json.dumps({"step": step, "complete": True, **engine.describe()}))
            if final.exists():
                if not (final / DONE_FILE).exists():
                    from grit_exp.errors import GritError

                    raise GritError(f"{final} exists but is not a checkpoint this toolkit completed; "
                                    "move it away, it was left untouched")
                shutil.rmtree(final)  # a complete checkpoint of the same step from an earlier attempt
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        prune(checkpoints_dir, keep_last)
    engine.barrier()
    return final


def _write_model(adapter: Any, model: torch.nn.Module, state_dict: dict[str, torch.Tensor], out: Path) -> None:
    if hasattr(model, "merge_and_unload"):  # PEFT: adapters beside, merged weights as the model
        model.save_pretrained(out / "adapter")
        merged = copy.deepcopy(model).merge_and_unload()
        adapter.save_model_dir(merged, out / "model")
    else:
        adapter.save_model_dir(model, out / "model", state_dict=state_dict)


def complete_checkpoints(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for child in checkpoints_dir.iterdir():
        m = STEP_DIR.match(child.name)
        if m and (child / DONE_FILE).exists() and (child / "state" / TRAINER_STATE).exists():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(checkpoints_dir: Path) -> Path | None:
    found = complete_checkpoints(checkpoints_dir)
    return found[-1][1] if found else None


def prune(checkpoints_dir: Path, keep_last: int) -> None:
    for _, path in complete_checkpoints(checkpoints_dir)[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)
    for stale in checkpoints_dir.glob(f"{TMP_PREFIX}*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The loop's own state (step, scheduler, sampler); read on CPU by every process."""
    return torch.load(checkpoint / "state" / TRAINER_STATE, map_location="cpu", weights_only=False)


def resolve_resume(setting: str, checkpoints_dir: Path) -> Path | None:
    """`trainer.resume`: "auto" (the newest complete checkpoint of this run, if any), "never", or a
    checkpoint directory (`.../checkpoints/step_<N>`)."""
    if setting == "auto":
        return latest_checkpoint(checkpoints_dir)
    if setting == "never":
        return None
    path = Path(setting)
    if not (path / DONE_FILE).exists() or not (path / "state" / TRAINER_STATE).exists():
        from grit_exp.errors import ConfigError

        raise ConfigError(f"trainer.resume={setting!r} is not a complete checkpoint (expected {DONE_FILE} and "
                          f"state/{TRAINER_STATE} inside); use 'auto', 'never' or a checkpoints/step_<N> directory")
    return path


def model_dir(checkpoint: Path) -> Path:
    """The checkpoint's complete model directory (`model.path=` it, or `from_pretrained` it)."""
    return checkpoint / "model"
