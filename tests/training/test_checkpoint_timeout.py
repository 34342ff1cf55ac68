"""A checkpoint whose writing outlasts the collective timeout (#18), on real CPU processes over gloo.

Rank 0 writes the model directory alone (consolidated weights, config, processor: a 7B model on a network
disk takes minutes); the other processes wait for its `.done` marker on the filesystem, in no collective,
as for the warm start. A test hook (fault_hooks.py, GRIT_TEST_SLOW_CHECKPOINT) makes rank 0's writing take
3 x `cluster.timeout_s`, at both saves of the run. Before the fix rank 1 waited in a barrier and the run
ended at step 1's save: "training step 1: rank 1 of 2 waited cluster.timeout_s=15 s in a collective ...".
"""

from __future__ import annotations

import pytest
from test_dynamic_sampling import assert_trains_like_one, torchrun

TIMEOUT_S = 15  # cluster.timeout_s of the 2-process run
SAVES = ["trainer.max_steps=2", "trainer.save_every=1", "trainer.keep_last=2"]


@pytest.mark.slow
def test_checkpoint_longer_than_the_collective_timeout_on_two_processes(tmp_path, grit_cache, one_process_run):
    one = one_process_run(*SAVES)
    two = torchrun(2, tmp_path / "two", grit_cache, "cluster=ddp", f"cluster.timeout_s={TIMEOUT_S}", *SAVES,
                   env={"GRIT_TEST_SLOW_CHECKPOINT": str(3 * TIMEOUT_S)})
    assert_trains_like_one(one, two, last_step=2)  # step 2 ran after step 1's slow save, as in one process
    checkpoints = two / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["step_1", "step_2"], "no marker or temporary left"
