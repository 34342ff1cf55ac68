"""`EvalOptions`: what an evaluation needs besides its rows, read from the `eval` node (and `seed`)
that training configs and conf/eval.yaml share (grit_exp.config.eval), and from the prompt what of a
response the judge scores (`prompt.judged_answer`). Nothing heavy is imported.

Left out: checking the node (grit_exp.config.eval, run by the entry points) and running anything
(`runner.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grit_exp.config import EvalSettingsConfig
from grit_exp.config.prompt import JudgedAnswer


@dataclass(frozen=True)
class EvalOptions:
    batch_size: int = EvalSettingsConfig.batch_size
    num_pictures: int = EvalSettingsConfig.num_pictures
    consistency: bool = EvalSettingsConfig.consistency
    consistency_repeats: int = EvalSettingsConfig.consistency_repeats
    seed: int = 0
    sampled_k: int = EvalSettingsConfig.sampled_k  # samples per row for reward_sampled; 0: off
    untagged_answer: str = str(EvalSettingsConfig.untagged_answer)  # zero | judge_whole_completion
    judged_answer: str = str(JudgedAnswer.tagged)  # the prompt's: tagged | whole_response

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
            untagged_answer=str(settings.untagged_answer),
            judged_answer=str(cfg.prompt.judged_answer),
        )
