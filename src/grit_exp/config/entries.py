"""What each entry point composes (`TrainConfig`: conf/train.yaml, `EvalConfig`: conf/eval.yaml) and
the checks that span groups, run once per entry point before any data is read or model loaded.

`validate_groups` runs the checks of every group a config holds (train, evaluate and infer share it);
`validate_train` and `validate_eval` add their entry's own: training data, the group size, batches
against the number of processes, the demo's values on a real checkpoint, what there is to evaluate.
Each raises ConfigError naming the key and what is valid. Enumerated values are not checked here:
they are enums of the group schemas, checked by OmegaConf when Hydra composes.

Left out: the groups' own schemas and checks (one module per group beside this one) and composing
(grit_exp.preflight, Hydra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig

from grit_exp.config.algorithm import AlgorithmConfig, AlgorithmName, check_algorithm, check_group_size
from grit_exp.config.cluster import ClusterConfig, check_cluster
from grit_exp.config.dataset import DatasetConfig, check_dataset
from grit_exp.config.eval import EvalSettingsConfig, check_eval
from grit_exp.config.judge import JudgeConfig, check_judge
from grit_exp.config.logger import LoggerConfig
from grit_exp.config.model import ModelConfig, check_config_model_path, check_model
from grit_exp.config.prompt import PromptConfig
from grit_exp.config.reward import RewardConfig, check_reward
from grit_exp.config.rollout import RolloutConfig, RolloutKind, check_rollout, check_rollout_kind
from grit_exp.config.trainer import TrainerConfig, check_trainer
from grit_exp.errors import ConfigError


@dataclass
class PathsConfig:
    data_root: str = "${oc.env:GRIT_DATA_ROOT,data/GRIT_data}"
    cache_dir: str = "${oc.env:GRIT_EXP_CACHE,${oc.env:HOME}/.cache/grit_exp}"


@dataclass
class Table1Config:
    """Which row of the paper's Table 1 a run fills (read by grit_exp.report); null: inferred.

    `model` defaults to model.name (qwen2_5_vl_3b, internvl3_2b); `method` (direct, cot, icl1, sft,
    grit) to what the weights are (grit_exp.reporting.methods: GRIT only for GRPO-trained weights, the
    base model with the GRIT prompt is cot). Any other value makes a row of its own, without paper numbers."""

    model: str | None = None
    method: str | None = None


@dataclass
class RunConfig:
    """What every entry point composes: the shared groups plus experiment metadata."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = MISSING
    dataset: DatasetConfig = MISSING
    prompt: PromptConfig = MISSING
    reward: RewardConfig = MISSING
    judge: JudgeConfig = MISSING
    rollout: RolloutConfig = MISSING
    cluster: ClusterConfig = MISSING
    logger: LoggerConfig = MISSING
    # Set by experiment files; free-form note shown in run_info.json and the report.
    experiment_note: str = ""
    # Set by the evaluation experiments (conf/eval_experiment/table1_*): the Table 1 row a run fills (grit_exp.report).
    table1: Table1Config = field(default_factory=Table1Config)
    # Set by conf/demo/*.yaml: the CPU demo's values were applied (tiny models only); null for a real run.
    demo_values: str | None = None


@dataclass
class TrainConfig(RunConfig):
    algorithm: AlgorithmConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalSettingsConfig = field(default_factory=EvalSettingsConfig)  # every trainer.eval_every steps


@dataclass
class EvalConfig(RunConfig):
    """`python -m grit_exp.evaluate` (conf/eval.yaml)."""

    eval: EvalSettingsConfig = field(default_factory=EvalSettingsConfig)


def check_shown(cfg: DictConfig) -> None:
    """What `--cfg` / `--info` check on the composed DictConfig (an incomplete config can still be shown,
    so it is not converted): the values a group's enum allows but this entry point does not
    (rollout.kind=vllm outside training)."""
    if "rollout" in cfg:
        check_rollout_kind(cfg.rollout, training="trainer" in cfg)


def validate_groups(cfg: Any, *, training: bool = False) -> None:
    """The checks of every group that a typed config (`grit_exp.config.typed.to_typed`: TrainConfig,
    EvalConfig, AppConfig) holds: the validation that train, evaluate and infer share (each adds the
    checks of its own keys). Raises ConfigError naming the key."""
    check_model(cfg.model)
    check_config_model_path(cfg, training=training)  # a model.path that cannot load: one line before anything runs
    run = hasattr(cfg, "judge")  # train and evaluate (RunConfig); infer and the web app (AppConfig) have no data or judge
    if run:
        check_dataset(cfg.dataset)
        check_judge(cfg.judge)  # numbers; judge.api_key: null or ${oc.env:VAR} only
    check_rollout(cfg, training=training)
    if run:
        check_reward(cfg.reward)


def validate_train(cfg: TrainConfig, world_size: int = 1) -> None:
    """Check a composed training config for `world_size` processes; raise ConfigError naming the key."""
    validate_groups(cfg, training=True)
    if not cfg.dataset.train and not cfg.dataset.synthetic.enabled:
        raise ConfigError("dataset.train is empty and dataset.synthetic.enabled is false: no training data")
    check_group_size(cfg.algorithm)
    if cfg.demo_values and not cfg.model.tiny_builder:
        raise ConfigError(
            f"model.tiny_builder=null loads a real checkpoint ({cfg.model.path}) but model={cfg.model.name} brings the "
            "CPU demo's values (conf/demo/cpu_train.yaml: trainer.learning_rate, trainer.warm_start_sft_steps, "
            "trainer.warm_start_learning_rate, trainer.max_steps, rollout.max_new_tokens); choose the real model's "
            "config instead (model=qwen2_5_vl_3b model.path=..., model=internvl3_2b model.path=...)"
        )
    check_algorithm(cfg.algorithm)
    _check_batches(cfg, world_size)
    check_cluster(cfg.cluster)
    check_trainer(cfg.trainer)
    check_eval(cfg.eval)
    if cfg.eval.checkpoint is not None:
        raise ConfigError(
            f"eval.checkpoint={cfg.eval.checkpoint!r} is set in a training config: training evaluates the weights it "
            "trains; evaluate a checkpoint with python -m grit_exp.evaluate eval.checkpoint=..."
        )


def _check_batches(cfg: TrainConfig, world_size: int) -> None:
    """Each prompt's group lives on one process, and micro-batches divide each process's share."""
    t, algorithm = cfg.trainer, cfg.algorithm
    if t.prompts_per_step % world_size != 0:
        raise ConfigError(
            f"trainer.prompts_per_step={t.prompts_per_step} is not divisible by the {world_size} processes; "
            "each prompt's group must live on one process"
        )
    if algorithm.name != AlgorithmName.sft:
        per_process = t.prompts_per_step // world_size * algorithm.num_generations
        if per_process % t.micro_batch_size != 0:
            raise ConfigError(
                f"trainer.micro_batch_size={t.micro_batch_size} does not divide the {per_process} completions "
                f"per process (trainer.prompts_per_step={t.prompts_per_step} / {world_size} processes x "
                f"algorithm.num_generations={algorithm.num_generations})"
            )
    else:
        per_process = t.prompts_per_step // world_size
        if per_process % min(t.micro_batch_size, per_process) != 0:
            raise ConfigError(
                f"trainer.micro_batch_size={t.micro_batch_size} does not divide the {per_process} rows per process "
                f"(trainer.prompts_per_step={t.prompts_per_step} / {world_size} processes)"
            )


def validate_eval(cfg: EvalConfig) -> None:
    """Check a composed conf/eval.yaml before any data is read or model loaded; raise ConfigError naming the key."""
    validate_groups(cfg)
    if cfg.rollout.kind == RolloutKind.hf and not cfg.dataset.eval and not cfg.dataset.synthetic.enabled:
        raise ConfigError(
            f"dataset={cfg.dataset.name!r} has no eval files (dataset.eval is empty) and the synthetic set is "
            "disabled: nothing to evaluate; choose e.g. dataset=grit_eval or dataset=synthetic"
        )
    check_eval(cfg.eval)
