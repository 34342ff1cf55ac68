"""Atomic checkpoints: `checkpoints/step_<N>/{model,state}`, written to a temporary directory, then renamed.

- `model/`: a complete Hugging Face model directory (weights consolidated from the engine's shards,
  config, generation config, processor, tokenizer), loadable by `from_pretrained` and usable as
  `model.path`. With LoRA it holds the merged weights and `adapter/` beside it the PEFT adapters,
  both written from the consolidated state (under ZeRO-3 the process's own parameters are empty).
  Its tensor names do not depend on the engine: the family's original checkpoint layout (e.g.
  `model.embed_tokens.weight`, `visual.blocks.0...` for Qwen2.5-VL), one name per tensor (a tied
  `lm_head.weight` is left out, as `from_pretrained` re-ties it). transformers otherwise reverses on
  save the renamings recorded when the model loaded, which differ when ZeRO-3 loaded it
  (`model.model.embed_tokens.weight`), and DeepSpeed's consolidated copies lose the tie (ZeRO-2 wrote
  `lm_head.weight` too).
- `state/`: the engine's state as accelerate writes it (model and optimizer, as DeepSpeed shards
  under ZeRO, one RNG file per process) plus `trainer_state.pt` (step, scheduler, sampler, number
  of processes).
Every process writes its part into the same temporary directory (rank 0 chooses it); rank 0 adds
the model directory and the marker, renames, and prunes to `keep_last`. Meanwhile the other processes
wait on the filesystem, in no collective (as for the warm start, `collectives.wait_for_file`): writing
a 7B model to a network disk may take longer than `cluster.timeout_s`. Rank 0 then touches
`.tmp-step_<N>-*.done` (or writes `.failed` with its error's first line, and the others stop with it).
A save killed half-way leaves only a `.tmp-*` directory (or marker file), which is ignored and later
removed; only directories named `step_<N>` or `.tmp-step_<N>-*` and marker files `.tmp-step_<N>-*.done`
/ `.failed` inside the run's own `checkpoints/` are ever deleted.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from grit_exp.cluster import collectives as distributed

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step_(\d+)$")
TMP_PREFIX = ".tmp-step_"
TRAINER_STATE = "trainer_state.pt"
DONE_FILE = "checkpoint.json"
MARKERS = (".done", ".failed")  # rank 0 -> the other processes: this save finished / failed
_UNSET = object()


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
    state_dict = engine.full_state_dict(policy)  # the last collective of the save
    done, failed = (tmp.with_name(tmp.name + suffix) for suffix in MARKERS)
    if not engine.is_main:
        del state_dict
        # rank 0 writes the model directory alone: wait outside any collective (it may outlast cluster.timeout_s)
        distributed.wait_for_file(done, failed, f"the checkpoint of step {step} ({final})")
        engine.barrier()  # rank 0 is already here: it touched `done` last
        return final
    try:
        _write_model(adapter, engine.unwrap(policy), state_dict, tmp, engine)
        torch.save({**trainer_state, "step": step, "world_size": engine.world_size}, tmp / "state" / TRAINER_STATE)
        (tmp / DONE_FILE).write_text(json.dumps({"step": step, "complete": True, **engine.describe()}))
        if final.exists():
            if not (final / DONE_FILE).exists():
                from grit_exp.errors import GritError

                raise GritError(f"{final} exists but is not a checkpoint this toolkit completed; "
                                "move it away, it was left untouched")
            shutil.rmtree(final)  # a complete checkpoint of the same step from an earlier attempt
        os.replace(tmp, final)
        prune(checkpoints_dir, keep_last)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if engine.world_size > 1:
            failed.write_text((f"{type(err).__name__}: {err}".splitlines() or [""])[0] + "\n")
        raise
    if engine.world_size > 1:
        done.touch()
        engine.barrier()  # every process has seen `done`
        done.unlink()
    return final


def _write_model(adapter: Any, model: torch.nn.Module, state_dict: dict[str, torch.Tensor], out: Path,
                 engine: Any) -> None:
    state_dict = _without_aliases(model, state_dict)
    if hasattr(model, "merge_and_unload"):  # PEFT: adapters beside, merged weights as the model
        model.save_pretrained(out / "adapter", state_dict=state_dict)  # PEFT keeps the adapters' entries
        with engine.whole_model_loading():  # rank 0 alone: no zero.Init (a collective) for the skeleton
            merged = _merged_from_state(model, state_dict)
        with _original_layout(merged):
            adapter.save_model_dir(merged, out / "model")
    else:
        with _original_layout(model):
            adapter.save_model_dir(model, out / "model", state_dict=state_dict)


def _without_aliases(model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One entry per tensor of `model`: names under which `named_parameters` / `named_buffers` list a
    tensor a second time (tied weights: `lm_head.weight` is the input embedding) are dropped."""
    aliases = _aliases(model)
    return {k: v for k, v in state_dict.items() if k not in aliases}


def _aliases(model: torch.nn.Module) -> set[str]:
    first = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    every = {n for n, _ in model.named_parameters(remove_duplicate=False)}
    every |= {n for n, _ in model.named_buffers(remove_duplicate=False)}
    return every - first


@contextlib.contextmanager
def _original_layout(model: torch.nn.Module) -> Iterator[None]:
    """`save_pretrained` writes the family's original tensor names, however the model was loaded.

    transformers reverses on save the renamings it recorded at load (`_weight_conversions`); under
    ZeRO-3 (`from_pretrained` inside `zero.Init`) that record holds more renamings and the reversal
    prefixes `model.` twice. Without a record it uses the family's own renamings, which is what a
    model loaded in one process from an original-layout checkpoint records."""
    recorded = model.__dict__.get("_weight_conversions", _UNSET)
    model._weight_conversions = None
    try:
        yield
    finally:
        if recorded is _UNSET:
            del model._weight_conversions
        else:
            model._weight_conversions = recorded


def _merged_from_state(peft_model: torch.nn.Module, state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The base model with the LoRA adapters merged, built from the consolidated `state_dict` (the PEFT
    model's own names): a copy of the PEFT model's structure on the meta device, its tensors assigned
    from `state_dict`, then PEFT's own `merge_and_unload`. The live model is not touched; under ZeRO-3
    its local parameters are empty shards, so they cannot be copied or merged themselves."""
    from peft import get_peft_model

    base = peft_model.get_base_model()
    with torch.device("meta"):
        skeleton = type(base)(copy.deepcopy(base.config))
    config = copy.deepcopy(peft_model.peft_config[peft_model.active_adapter])
    skeleton = get_peft_model(skeleton, config)
    missing, unexpected = skeleton.load_state_dict(state_dict, strict=False, assign=True)
    aliases = set(_aliases(peft_model))
    if unexpected or set(missing) - aliases:
        raise RuntimeError(f"the consolidated state does not fit the model: missing {sorted(set(missing) - aliases)[:5]}, "
                           f"unexpected {sorted(unexpected)[:5]}")
    skeleton.get_base_model().tie_weights()  # the aliases left out of `state_dict` point at their tensor again
    merged = skeleton.merge_and_unload()
    left = [n for n, p in merged.state_dict().items() if p.is_meta]
    if left:
        raise RuntimeError(f"merging the LoRA adapters left tensors without values: {left[:5]}")
    merged.generation_config = copy.deepcopy(base.generation_config)
    return merged


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
        elif stale.suffix in MARKERS and stale.is_file():  # an interrupted save's marker
            stale.unlink(missing_ok=True)


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
