"""What an evaluation needs besides its rows: `EvalOptions`, read from an eval or a training config,
and `validate_eval_config`, the semantic checks of a composed conf/eval.yaml.

`EvalOptions.from_config` works on both config trees: conf/eval.yaml has `eval.*` and `metrics.*`;
a training config has neither and falls back to `trainer.eval_batch_size`, `trainer.eval_sampled_k`
and the defaults, so the training loop can call the same evaluation. Nothing heavy is imported here.

Left out: running anything (`runner.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grit_exp.config import ConfigError, EvalMetricsConfig, EvalSettingsConfig, validate_groups


@dataclass(frozen=True)
class EvalOptions:
    batch_size: int = EvalSettingsConfig.batch_size
    num_pictures: int = EvalSettingsConfig.num_pictures
    consistency: bool = EvalMetricsConfig.consistency
    consistency_repeats: int = EvalMetricsConfig.consistency_repeats
    seed: int = 0
    sampled_k: int = EvalSettingsConfig.sampled_k  # samples per row for reward_sampled; 0: off

    @classmethod
    def from_config(cls, cfg: Any) -> EvalOptions:
        settings = cfg.get("eval") if hasattr(cfg, "get") else getattr(cfg, "eval", None)
        metrics = cfg.get("metrics") if hasattr(cfg, "get") else getattr(cfg, "metrics", None)
        trainer = cfg.get("trainer") if hasattr(cfg, "get") else getattr(cfg, "trainer", None)
        batch_size = settings.batch_size if settings is not None else (
            trainer.eval_batch_size if trainer is not None else cls.batch_size
        )
        sampled_k = settings.get("sampled_k", cls.sampled_k) if settings is not None else (
            trainer.get("eval_sampled_k", cls.sampled_k) if trainer is not None else cls.sampled_k
        )
        return cls(
            batch_size=int(batch_size),
            num_pictures=int(settings.num_pictures) if settings is not None else cls.num_pictures,
            consistency=bool(metrics.consistency) if metrics is not None else cls.consistency,
            consistency_repeats=int(metrics.consistency_repeats) if metrics is not None else cls.consistency_repeats,
            seed=int(cfg.seed),
            sampled_k=int(sampled_k),
        )


def validate_eval_config(cfg: Any) -> None:
    """Check a composed conf/eval.yaml before any data is read or model loaded; raise ConfigError naming the key.

    The checks shared by every entry point (`config.validate_groups`: enumerated values, model, judge,
    rollout, reward) and the evaluation's own keys."""
    validate_groups(cfg)
    if cfg.rollout.kind == "hf" and not cfg.dataset.eval and not cfg.dataset.synthetic.enabled:
        raise ConfigError(
            f"dataset={cfg.dataset.name!r} has no eval files (dataset.eval is empty) and the synthetic set is "
            "disabled: nothing to evaluate; choose e.g. dataset=grit_eval or dataset=synthetic"
        )
    if cfg.eval.batch_size < 1:
        raise ConfigError(f"eval.batch_size={cfg.eval.batch_size} must be >= 1")
    if cfg.eval.num_pictures < 0:
        raise ConfigError(f"eval.num_pictures={cfg.eval.num_pictures} must be >= 0")
    if cfg.eval.sampled_k < 0:
        raise ConfigError(f"eval.sampled_k={cfg.eval.sampled_k} must be >= 0 (0: no sampled evaluation)")
    if cfg.metrics.consistency_repeats < 1:
        raise ConfigError(f"metrics.consistency_repeats={cfg.metrics.consistency_repeats} must be >= 1")
