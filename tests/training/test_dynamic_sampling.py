"""Dynamic sampling (`algorithm.dynamic_sampling`) on the real training loop and tiny model.

The reward is a real registry term (`spread_term.py`) that has spread on one dataset's rows and is
constant on all others, so which groups have zero spread is known from the prompts alone; the
prompts each step drew are in the run's sampled_prompts.jsonl, round after round.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from spread_term import TERM, register, unregister

from grit_exp.config import validate_train
from grit_exp.data.reader import load_dataset_splits
from grit_exp.errors import ConfigError
from grit_exp.hydra_app import CONF_DIR
from grit_exp.training.run import run_training
from grit_exp.training.sampler import PromptSampler
from tests.helpers.configs import compose_config
from tests.helpers.torchrun import launch

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = 4  # trainer.prompts_per_step
G = 4
RUN = [
    # the mixed question kinds (the demo's own data is counting only): the filter's cases depend on the mix
    "dataset.synthetic.kind_weights=[0.6,0.2,0.2]", "dataset.synthetic.count_targets=9",
    "dataset.synthetic.num_train=40", "dataset.synthetic.num_val=2", f"trainer.prompts_per_step={PROMPTS}",
    f"algorithm.num_generations={G}", "trainer.micro_batch_size=8", "trainer.warm_start_sft_steps=0",
    "trainer.eval_on_start=false", "trainer.eval_every=100", "eval.sampled_k=0", "trainer.save_every=100",
    "trainer.lr_scheduler=constant", "rollout.max_new_tokens=8", "rollout.stop_strings=[]", "seed=5",
]
DYNAMIC_KEYS = ("train/dynamic_sampling_rounds", "train/groups_dropped", "train/groups_kept")


@pytest.fixture
def spread_term():
    """Registered for the tests that use it only, so the registry other tests see is the shipped one."""
    register()
    yield
    unregister()


def compose_cfg(*overrides: str, weight: float = 1.0, dataset: str = "synth_count"):
    cfg = compose_config("train", *RUN, *overrides)
    cfg.reward.weights = {TERM: weight}
    cfg.reward.options = {TERM: {"dataset": dataset}}
    validate_train(cfg)
    return cfg


def train(run_dir: Path, *overrides: str, **reward) -> tuple[list[dict], list[list[tuple]]]:
    """(the train records of metrics.jsonl, each step's prompt keys in draw order)"""
    run_training(compose_cfg(*overrides, **reward), run_dir=run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    drawn = [json.loads(line)["keys"] for line in (run_dir / "sampled_prompts.jsonl").read_text().splitlines()]
    return [r for r in records if "train/loss" in r], [[tuple(k) for k in keys] for keys in drawn]


def expected_filter(keys: list[tuple], max_rounds: int, dataset: str = "synth_count") -> dict[str, float]:
    """What the filter must have done with a step's prompts (round-major keys): keep the groups of
    `dataset` rows, drop the rest, and stop at the first round that completes PROMPTS kept groups."""
    rounds = [keys[i : i + PROMPTS] for i in range(0, len(keys), PROMPTS)]
    kept, used = 0, 0
    for round_keys in rounds:
        used += 1
        kept += sum(1 for k in round_keys if k[0] == dataset)
        if kept >= PROMPTS or used == max_rounds:
            break
    dropped = used * PROMPTS - sum(1 for k in keys[: used * PROMPTS] if k[0] == dataset)
    return {"train/dynamic_sampling_rounds": used, "train/groups_dropped": dropped,
            "train/groups_kept": min(kept, PROMPTS)}


def test_zero_spread_groups_are_dropped_and_replaced_by_more_prompts(tmp_path, grit_cache, tiny_model_paths,
                                                                      spread_term):
    steps, drawn = train(tmp_path / "run", "trainer.max_steps=3", "algorithm.dynamic_sampling.enabled=true",
                         "algorithm.dynamic_sampling.max_rounds=4")
    assert [r["step"] for r in steps] == [1, 2, 3]
    for record, keys in zip(steps, drawn, strict=True):
        want = expected_filter(keys, max_rounds=4)
        assert {k: record[k] for k in DYNAMIC_KEYS} == want, (record, keys)
        assert len(keys) == want["train/dynamic_sampling_rounds"] * PROMPTS, "only the rounds it rolled out"
        # the share before filtering, over every group rolled out; the loss counts the kept groups only
        assert record["train/frac_zero_std"] == pytest.approx(want["train/groups_dropped"] / len(keys))  # float32
        assert record["train/global_completions"] == want["train/groups_kept"] * G
    assert any(r["train/dynamic_sampling_rounds"] > 1 for r in steps), "some step replaced dropped groups"
    # the extra rounds came from the run's sampler, in its order: a resumed run draws the same prompts
    cfg = compose_cfg()
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    sampler = PromptSampler(len(rows), cfg.seed)
    assert [k for keys in drawn for k in keys] == [rows[i].key for i in sampler.next_indices(sum(map(len, drawn)))]


def test_max_rounds_bounds_the_rounds_and_a_short_step_trains_on_what_it_has(tmp_path, grit_cache,
                                                                            tiny_model_paths, spread_term):
    steps, drawn = train(tmp_path / "run", "trainer.max_steps=3", "algorithm.dynamic_sampling.enabled=true",
                         "algorithm.dynamic_sampling.max_rounds=2", dataset="synth_spatial")
    for record, keys in zip(steps, drawn, strict=True):
        want = expected_filter(keys, max_rounds=2, dataset="synth_spatial")
        assert {k: record[k] for k in DYNAMIC_KEYS} == want, (record, keys)
        assert record["train/global_completions"] == want["train/groups_kept"] * G
    assert any(r["train/groups_kept"] < PROMPTS for r in steps), "spatial rows are 20%: some step falls short"


def test_no_group_with_spread_leaves_the_weights_alone(tmp_path, grit_cache, tiny_model_paths, spread_term):
    run = tmp_path / "run"
    steps, drawn = train(run, "trainer.max_steps=2", "trainer.save_every=2", "algorithm.dynamic_sampling.enabled=true",
                         "algorithm.dynamic_sampling.max_rounds=2", weight=0.0)
    for record, keys in zip(steps, drawn, strict=True):
        assert len(keys) == 2 * PROMPTS
        assert {k: record[k] for k in DYNAMIC_KEYS} == {"train/dynamic_sampling_rounds": 2,
                                                         "train/groups_dropped": 2 * PROMPTS,
                                                         "train/groups_kept": 0}
        assert record["train/frac_zero_std"] == 1.0 and record["train/loss"] == 0.0
    start = load_file(tiny_model_paths["tiny_qwen2_5_vl"] / "model.safetensors")
    final = load_file(run / "checkpoints" / "step_2" / "model" / "model.safetensors")
    assert all(torch.equal(final[k], start[k].to(final[k].dtype)) for k in start), "no optimizer step was taken"


def test_off_trains_every_group_and_on_without_zero_spread_is_the_same_run(tmp_path, grit_cache, tiny_model_paths,
                                                                           spread_term):
    """Off: one round per step, zero-spread groups trained on (A = 0), no dynamic keys. On, with a
    reward that has spread in every group, nothing is dropped and the run is the same to the bit."""
    steps, drawn = train(tmp_path / "off_count", "trainer.max_steps=2")
    assert all(len(keys) == PROMPTS for keys in drawn)
    assert all(r["train/global_completions"] == PROMPTS * G and not set(DYNAMIC_KEYS) & set(r) for r in steps)
    assert any(r["train/frac_zero_std"] > 0 for r in steps)

    runs = {}
    for enabled in ("false", "true"):
        run = tmp_path / f"every_{enabled}"
        runs[enabled] = (*train(run, "trainer.max_steps=2", "trainer.save_every=2",
                                f"algorithm.dynamic_sampling.enabled={enabled}", dataset="*"), run)
    (off, off_drawn, off_run), (on, on_drawn, on_run) = runs["false"], runs["true"]
    assert off_drawn == on_drawn
    assert all(r["train/groups_dropped"] == 0 and r["train/dynamic_sampling_rounds"] == 1 for r in on)
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time/") and k not in DYNAMIC_KEYS}  # noqa: E731
                        for r in rs]
    assert strip(off) == strip(on)
    a = load_file(off_run / "checkpoints" / "step_2" / "model" / "model.safetensors")
    b = load_file(on_run / "checkpoints" / "step_2" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resumed_run_draws_and_trains_like_an_uninterrupted_one(tmp_path, grit_cache, tiny_model_paths,
                                                                 spread_term):
    on = ("algorithm.dynamic_sampling.enabled=true", "algorithm.dynamic_sampling.max_rounds=3")
    on = (*on, "trainer.eval_every=2")  # both runs evaluate at step 2, as the interrupted one does at its end
    straight, straight_drawn = train(tmp_path / "straight", "trainer.max_steps=4", *on)
    resumed_dir = tmp_path / "resumed"
    train(resumed_dir, "trainer.max_steps=2", "trainer.save_every=2", *on)
    resumed, resumed_drawn = train(resumed_dir, "trainer.max_steps=4", "trainer.resume=auto", *on)
    assert resumed_drawn == straight_drawn
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rs]  # noqa: E731
    assert strip(resumed) == strip(straight)
    a = load_file(tmp_path / "straight" / "checkpoints" / "step_4" / "model" / "model.safetensors")
    b = load_file(resumed_dir / "checkpoints" / "step_4" / "model" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_dynamic_sampling_settings_are_checked(grit_cache, spread_term):
    with pytest.raises(ConfigError, match="algorithm.dynamic_sampling.max_rounds=0"):
        compose_cfg("algorithm.dynamic_sampling.max_rounds=0")
    with pytest.raises(ConfigError, match="algorithm.dynamic_sampling.enabled=true"):
        compose_cfg("algorithm=sft", "algorithm.dynamic_sampling.enabled=true")
    for algorithm, enabled in (("grpo", False), ("dr_grpo", False), ("dapo", True)):
        assert compose_cfg(f"algorithm={algorithm}").algorithm.dynamic_sampling.enabled is enabled
    for experiment in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        if experiment.stem.startswith("table1_"):  # evaluation experiments (conf/eval.yaml): no training
            continue
        cfg = compose_config("train", f"experiment={experiment.stem}")
        assert cfg.algorithm.dynamic_sampling.enabled is False, experiment.name  # the paper did not filter


def torchrun(processes: int, run_dir: Path, cache: Path, *overrides: str, env: dict[str, str] | None = None) -> Path:
    """A 4-step run (dynamic sampling on, reward spread on the spatial rows only) on `processes` CPU processes."""
    args = [*RUN, "trainer.max_steps=4", "trainer.save_every=4", f"+reward.weights.{TERM}=1.0",
            "reward.weights.format=0", "reward.weights.count=0", "reward.weights.judge_accuracy=0",
            "reward.weights.bleu1=0", f"+reward.options.{TERM}.dataset=synth_spatial",
            "algorithm.dynamic_sampling.enabled=true", "algorithm.dynamic_sampling.max_rounds=2",
            "algorithm.loss_aggregation=token_mean", "algorithm.scale_rewards=batch",
            f"hydra.run.dir={run_dir}", *overrides]
    code, out = launch(processes, cache, args, env)
    assert code == 0, out[-5000:]
    return run_dir


SHAPES = {
    "groups_of_4": [],
    # the shape (#18): micro-batches of 1, groups of 2, one round; hung on f2c5dfe
    "micro_batches_of_1": ["trainer.micro_batch_size=1", "algorithm.num_generations=2",
                           "algorithm.dynamic_sampling.max_rounds=1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cluster", ["ddp", "node8_zero3"])
def test_two_processes_filter_and_train_like_one(cluster, shape, tmp_path, grit_cache, one_process_run):
    """Kept groups land unevenly on the processes (a process may get none and run zero-weight passes of
    one micro-batch each): the same prompts, filter decisions, losses and weights as one process, under
    DDP and ZeRO-3 (whose forward passes gather parameters: every process must run as many), with
    micro-batches of a whole group and of a single completion."""
    one = one_process_run(*SHAPES[shape])
    two = torchrun(2, tmp_path / "two", grit_cache, f"cluster={cluster}", *SHAPES[shape])

    ra = assert_trains_like_one(one, two, last_step=4)
    kept = [r["train/groups_kept"] for r in ra]
    assert any(k % 2 for k in kept), f"an odd number of kept groups splits unevenly over 2 processes: {kept}"


def assert_trains_like_one(one: Path, two: Path, last_step: int) -> list[dict]:
    """Run `two` drew the prompts of run `one`, took the same filter decisions and rewards, the same losses
    (float tolerance) and ends with the same weights; returns `one`'s train records."""

    def records(run: Path) -> list[dict]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [r for r in map(json.loads, lines) if "train/loss" in r]

    assert (one / "sampled_prompts.jsonl").read_text() == (two / "sampled_prompts.jsonl").read_text()
    ra, rb = records(one), records(two)
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == list(range(1, last_step + 1))
    for a, b in zip(ra, rb, strict=True):
        assert {k: a.get(k) for k in DYNAMIC_KEYS} == {k: b.get(k) for k in DYNAMIC_KEYS}
        assert a["train/reward"] == b["train/reward"] and a["train/frac_zero_std"] == b["train/frac_zero_std"]
        assert abs(a["train/loss"] - b["train/loss"]) <= 1e-6, (a, b)
    # loaded, not read from the files: ZeRO-3 names the saved tensors its own way
    from transformers import Qwen2_5_VLForConditionalGeneration

    wa, wb = (Qwen2_5_VLForConditionalGeneration.from_pretrained(run / "checkpoints" / f"step_{last_step}" / "model")
              .state_dict() for run in (one, two))
    assert max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa) <= 1e-5
    return ra
