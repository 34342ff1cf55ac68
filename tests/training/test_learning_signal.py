"""The GRPO update carries a real learning signal, and beta = 0 builds no reference model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from grit_exp.algorithm.grpo import grpo_step
from grit_exp.algorithm.step_modules import StepModules
from grit_exp.cluster.engine import TrainingEngine
from grit_exp.config import validate_train
from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import load_dataset_splits
from grit_exp.judge import build_judge
from grit_exp.models import build_adapter
from grit_exp.rewards import REWARD_TERMS, TERM_OPTIONS, reward_term
from grit_exp.rollout.hf import HFRollout
from grit_exp.training.optimizer import build_optimizer
from grit_exp.training.run import build_scheduler, run_training
from tests.helpers.configs import compose_config


@dataclass
class _NoOptions:
    pass


def favours_even_ids(completions, rows, ctx, **options):
    """The share of a completion's tokens whose id is even: frequent enough to vary in every group."""
    return [sum(1 for t in ids if t % 2 == 0) / max(len(ids), 1) for ids in ctx.token_ids]


@pytest.fixture
def even_ids_term():
    """Registered only for the test that uses it, so the registry other tests see is the shipped one."""
    reward_term("test_favours_even_ids", _NoOptions)(favours_even_ids)
    yield
    REWARD_TERMS.pop("test_favours_even_ids")
    TERM_OPTIONS.pop("test_favours_even_ids")


def compose_cfg(*overrides: str):
    return compose_config("train", *overrides)


def test_a_reward_for_even_token_ids_raises_their_probability(even_ids_term, grit_cache, tiny_model_paths):
    cfg = compose_cfg(
        "algorithm.beta=0",
        "rollout.max_new_tokens=8", "rollout.temperature=1.0", "rollout.stop_strings=[]",
        "trainer.prompts_per_step=4", "trainer.micro_batch_size=16", "algorithm.num_generations=8",
        "dataset.synthetic.num_train=16", "dataset.synthetic.num_val=4", "trainer.learning_rate=3e-3",
    )
    cfg.reward.weights = {"test_favours_even_ids": 1.0}
    cfg.reward.options = {}
    validate_train(cfg)
    torch.manual_seed(0)
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    policy = adapter.load_model("cpu")
    optimizer = build_optimizer(policy.parameters(), cfg.trainer.learning_rate, cfg.trainer.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=2, micro_batch_size=16)
    policy, optimizer = engine.prepare(policy, optimizer)
    modules = StepModules(adapter, policy, None, HFRollout(adapter, cfg.rollout), build_judge(cfg.judge), optimizer,
                          scheduler, cfg, engine)
    probe = adapter.build_prompt_batch(rows[:4], [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:4]])

    def p_even() -> float:
        """Probability mass on even token ids at the first completion position."""
        with torch.no_grad():
            logits = policy(**probe.inputs).logits[:, -1].float()
        logits[:, adapter.suppressed_token_ids] = float("-inf")
        return float(torch.softmax(logits, -1)[:, 0::2].sum(-1).mean())

    before = p_even()
    for step in range(10):
        metrics = grpo_step(modules, rows[(step * 4) % 16 : (step * 4) % 16 + 4], step + 1, first_prompt_index=0)
        assert all(v == v for v in metrics.values()), metrics  # finite, no NaN
        assert abs(metrics["train/loss"]) < 1e3
    after = p_even()
    assert after > before + 0.1, (before, after)


def test_beta_zero_builds_no_reference_model(tmp_path, grit_cache, tiny_model_paths):
    common = ["dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "trainer.max_steps=1",
              "trainer.prompts_per_step=2", "trainer.micro_batch_size=8", "trainer.warm_start_sft_steps=0",
              "trainer.eval_on_start=false", "rollout.max_new_tokens=4", "trainer.eval_every=100"]
    for beta, expected in (("0", False), ("0.01", True)):
        cfg = compose_cfg(*common, f"algorithm.beta={beta}")
        validate_train(cfg)
        summary = run_training(cfg, run_dir=tmp_path / f"beta_{beta}")
        assert summary["reference_model_built"] is expected
