"""Typed schemas of every config group, each beside its semantic checks, and their registration.

One module per config group (conf/<group>/): `model`, `dataset`, `prompt`, `reward`, `judge`,
`rollout`, `algorithm`, `cluster`, `logger`, plus `trainer` and `eval` (nodes of the entries'
configs); `entries` holds what each entry point composes and the checks across groups;
`store` registers the schemas with Hydra. Structural errors (a misspelled key, a wrong type, a value
outside an enum) are caught by OmegaConf when Hydra composes a YAML file onto its schema; semantic
errors (a batch not divisible by the group size, an unknown reward term) by `validate_train` /
`validate_eval` / `validate_groups`, which the entry points run before any model is loaded.
Nothing heavy is imported: no torch, no transformers.

The names below are the ones the rest of the package uses; the enums stay in their group's module.
"""

from grit_exp.config.algorithm import AlgorithmConfig, DynamicSamplingConfig
from grit_exp.config.cluster import ClusterConfig, SlurmConfig
from grit_exp.config.dataset import DataFileConfig, DatasetConfig, SyntheticDataConfig
from grit_exp.config.entries import (
    EvalConfig,
    PathsConfig,
    RunConfig,
    Table1Config,
    TrainConfig,
    validate_eval,
    validate_groups,
    validate_train,
)
from grit_exp.config.eval import EvalSettingsConfig
from grit_exp.config.judge import JudgeConfig
from grit_exp.config.logger import LoggerConfig
from grit_exp.config.model import MODEL_FAMILIES, LoraConfig, ModelConfig
from grit_exp.config.prompt import FamilyPromptConfig, PromptConfig
from grit_exp.config.reward import RewardConfig
from grit_exp.config.rollout import RolloutConfig, VLLMRolloutConfig
from grit_exp.config.store import register_configs
from grit_exp.config.trainer import TrainerConfig

__all__ = [
    "MODEL_FAMILIES",
    "AlgorithmConfig",
    "ClusterConfig",
    "DataFileConfig",
    "DatasetConfig",
    "DynamicSamplingConfig",
    "EvalConfig",
    "EvalSettingsConfig",
    "FamilyPromptConfig",
    "JudgeConfig",
    "LoggerConfig",
    "LoraConfig",
    "ModelConfig",
    "PathsConfig",
    "PromptConfig",
    "RewardConfig",
    "RolloutConfig",
    "RunConfig",
    "SlurmConfig",
    "SyntheticDataConfig",
    "Table1Config",
    "TrainConfig",
    "TrainerConfig",
    "VLLMRolloutConfig",
    "register_configs",
    "validate_eval",
    "validate_groups",
    "validate_train",
]
