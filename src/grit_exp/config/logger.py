"""The `logger` group's schema (conf/logger/*.yaml): where training metrics go.

Left out: the loggers themselves (grit_exp.training.logger).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LoggerKind(StrEnum):
    jsonl = "jsonl"
    wandb = "wandb"


@dataclass
class LoggerConfig:
    kind: LoggerKind = LoggerKind.jsonl
    project: str = "grit-exp"
    entity: str | None = None
    mode: str = "offline"  # wandb mode unless WANDB_MODE says otherwise
    log_every: int = 1
