"""Several processes never wait on each other forever (#18), on real CPU processes over gloo.

- every rank runs as many forward passes per micro-batch, whatever its completions: a micro-batch of
  one-token completions on one rank only trains like one process (DDP, ZeRO-3);
- a collective that a rank never joins ends the run within `cluster.timeout_s`, with one line naming the
  step and the rank, not a silent hang;
- a warm start that takes longer than `cluster.timeout_s` (rank 0 trains it, the others wait outside any
  collective) finishes and gives the 1-process warm start and run.
The faults and shapes come from test-only hooks loaded in every process (fault_hooks.py).
"""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file
from test_dynamic_sampling import RUN, assert_trains_like_one, torchrun

from grit_exp.data.reader import load_dataset_splits
from grit_exp.training.sampler import PromptSampler
from tests.helpers.configs import compose_config
from tests.helpers.torchrun import launch

TIMEOUT_S = 15  # cluster.timeout_s: every collective of these runs waits at most this long


def first_step_rows(rank: int, processes: int = 2) -> list[tuple]:
    """The keys of the prompts that `rank` draws at step 1 (the sampler's first draw, split by rank)."""
    cfg = compose_config("train", *RUN)
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    indices = PromptSampler(len(rows), cfg.seed).next_indices(cfg.trainer.prompts_per_step)
    per = cfg.trainer.prompts_per_step // processes
    return [rows[i].key for i in indices[rank * per : (rank + 1) * per]]


ONE_TOKEN = ["algorithm.dynamic_sampling.enabled=false", "trainer.micro_batch_size=4", "trainer.max_steps=2",
             "trainer.save_every=2", "reward.options.test_spread_on_dataset.dataset='*'"]


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["ddp", "node8_zero3"])
def test_one_token_micro_batch_on_one_rank_trains_like_one_process(cluster, tmp_path, grit_cache, one_process_run):
    """Rank 1's first prompt of step 1 gets one-token completions only: its first micro-batch (one group)
    is one token long, rank 0's are not. Before ef39b38 that micro-batch ran one forward pass and the
    others two: ZeRO-3's parameter gathers (DDP's buffer broadcasts) then waited forever. Under ZeRO-3 the
    backward gathers parameters and reduce-scatters gradients once per forward pass in the autograd graph,
    so the second pass of one-token completions must be in the graph too (with it outside, under no_grad,
    gloo stops at once: "Received data size doesn't match expected size"). A mismatch fails within the
    60 s collective timeout instead of hanging."""
    env = {"GRIT_TEST_ONE_TOKEN_KEYS": json.dumps([first_step_rows(rank=1)[0]])}
    one = one_process_run(*ONE_TOKEN, env=env)
    two = torchrun(2, tmp_path / "two", grit_cache, f"cluster={cluster}", "cluster.timeout_s=60",
                   *ONE_TOKEN, env=env)
    assert_trains_like_one(one, two, last_step=2)
    first = json.loads((one / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 1 and first["train/completion_tokens"] < 8, "the cut completions were trained on"


@pytest.mark.slow
def test_a_rank_that_never_joins_a_collective_fails_the_run_naming_step_and_rank(tmp_path, grit_cache,
                                                                                 tiny_model_paths):
    """Rank 1 sleeps (far past the timeout) before step 2's metrics average; rank 0 waits cluster.timeout_s
    in that collective and the run ends with one line. Before cluster.timeout_s this waited 30 minutes
    (gloo's default), silently."""
    args = [*RUN, "trainer.max_steps=3", "cluster=ddp", f"cluster.timeout_s={TIMEOUT_S}",
            f"hydra.run.dir={tmp_path / 'run'}"]
    code, out = launch(2, grit_cache, args, env={"GRIT_TEST_SLOW_RANK": "1:2:100000"}, timeout=400)
    assert code != 0, out[-3000:]
    assert f"training step 2: rank 0 of 2 waited cluster.timeout_s={TIMEOUT_S} s in a collective" in out, out[-3000:]
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1], "step 1 finished and was logged; step 2 was not"


@pytest.mark.slow
def test_warm_start_longer_than_the_collective_timeout_on_two_processes(tmp_path, tiny_model_paths):
    """Rank 0's warm start takes 3 x cluster.timeout_s (a test hook sleeps before its SFT loop); rank 1 waits
    for the cached directory outside any collective. The warm-start weights and the run equal one process's
    (the 1-process warm start is moved out of the cache, so that the 2-process run trains its own)."""
    warm = ["trainer.warm_start_sft_steps=4", "trainer.warm_start_batch_size=2", "trainer.max_steps=2",
            "trainer.save_every=2", f"cluster.timeout_s={TIMEOUT_S}"]
    env = {"GRIT_TEST_SLOW_WARM_START": str(3 * TIMEOUT_S)}
    cache = tmp_path / "cache"  # the same data (its keys name the images' paths), a warm start of each run's own
    one = torchrun(1, tmp_path / "one", cache, "cluster=local", *warm, env=env)
    (cache / "warm_start").rename(tmp_path / "warm_start_one")
    two = torchrun(2, tmp_path / "two", cache, "cluster=ddp", *warm, env=env)
    (wa,), (wb,) = ((tmp_path / "warm_start_one").glob("*/model.safetensors"), (cache / "warm_start").glob("*/model.safetensors"))
    a, b = load_file(wa), load_file(wb)
    assert a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and a[k].equal(b[k]) for k in a)
    assert_trains_like_one(one, two, last_step=2)
