"""`register_configs`: the schemas Hydra's ConfigStore holds, so each YAML file composes onto one.

Each YAML file of a group lists `<group>/schema` first in its defaults list (the entries list
`train_schema` / `eval_schema`), so a misspelled key, a wrong type or a value outside an enum fails
when Hydra composes it.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from grit_exp.config.algorithm import AlgorithmConfig
from grit_exp.config.cluster import ClusterConfig
from grit_exp.config.dataset import DatasetConfig
from grit_exp.config.entries import EvalConfig, TrainConfig
from grit_exp.config.judge import JudgeConfig
from grit_exp.config.logger import LoggerConfig
from grit_exp.config.model import ModelConfig
from grit_exp.config.prompt import PromptConfig
from grit_exp.config.reward import RewardConfig
from grit_exp.config.rollout import RolloutConfig

GROUP_SCHEMAS: dict[str, type] = {
    "model": ModelConfig,
    "dataset": DatasetConfig,
    "prompt": PromptConfig,
    "reward": RewardConfig,
    "judge": JudgeConfig,
    "rollout": RolloutConfig,
    "algorithm": AlgorithmConfig,
    "cluster": ClusterConfig,
    "logger": LoggerConfig,
}


def register_configs() -> None:
    """Register the entries' schemas and one `<group>/schema` node per group."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)  # conf/train.yaml (python -m grit_exp.train)
    cs.store(name="eval_schema", node=EvalConfig)  # conf/eval.yaml (python -m grit_exp.evaluate)
    for group, schema in GROUP_SCHEMAS.items():
        cs.store(group=group, name="schema", node=schema)
