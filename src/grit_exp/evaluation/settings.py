"""`EvalOptions`: what an evaluation needs besides its rows, read from the `eval` node (and `seed`)
that training configs and conf/eval.yaml share (grit_exp.config.eval). Nothing heavy is imported.

Left out: checking the node (grit_exp.config.eval, run by the entry points) and running anything
(`runner.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grit_exp.config import EvalSettingsConfig


@dataclass(frozen=True)
class EvalOptions:
    batch_size: int = EvalSettingsConfig.batch_size
    num_pictures: int = EvalSettingsConfig.num_pictures
    consistency: bool = EvalSettingsConfig.consistency
    consistency_repeats: int = EvalSettingsConfig.consistency_repeats
    seed: int = 0
    sampled_k: int = EvalSettingsConfig.sampled_k  # samples per row for reward_sampled; 0: off

    @classmethod
    def from_config(cls, cfg: Any) -> EvalOptions:
        settings = cfg.eval
        return cls(
            batch_size=int(settings.batch_size),
            num_pictures=int(settings.num_pictures),
            consistency=bool(settings.consistency),
            consistency_repeats=int(settings.consistency_repeats),
            seed=int(cfg.seed),
            sampled_k=int(settings.sampled_k),
        )
