"""Per-completion seeded sampling: an exact draw from the filtered softmax, and a completion's tokens
depend only on its own seed, not on which other prompts share its batch (hence not on the number of
processes)."""

from __future__ import annotations

import torch
from transformers import LogitsProcessorList, TopKLogitsWarper, TopPLogitsWarper

from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import load_dataset_splits
from grit_exp.models import build_adapter
from grit_exp.rollout.hf import HFRollout
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler, completion_seed, filter_top_k_top_p
from tests.helpers.configs import compose_config


def test_top_k_top_p_filter_matches_transformers_warpers():
    torch.manual_seed(0)
    logits = torch.randn(6, 40)
    for top_k, top_p in ((5, 1.0), (0, 0.7), (10, 0.5), (40, 0.95)):
        warpers = LogitsProcessorList()
        if top_k:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        expected = warpers(torch.zeros(6, 1, dtype=torch.long), logits.clone())
        got = filter_top_k_top_p(logits.clone(), top_k, top_p)
        assert torch.equal(torch.isinf(got), torch.isinf(expected)), (top_k, top_p)


def test_draws_follow_the_tempered_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]])
    temperature, n = 0.7, 20000
    sampler = PerRowSeededSampler([completion_seed(0, 1, i, 0) for i in range(n)], temperature, 0, 1.0, torch.device("cpu"))
    out = sampler(torch.zeros(n, 1, dtype=torch.long), logits.expand(n, -1).clone())
    drawn = out.argmax(-1)
    assert torch.isfinite(out).sum(-1).eq(1).all(), "exactly one token left per row"
    freq = torch.bincount(drawn, minlength=5).float() / n
    expected = torch.softmax(logits[0] / temperature, -1)
    assert (freq - expected).abs().max() < 0.015, (freq, expected)


def test_seeds_are_stable_and_distinct():
    assert completion_seed(3, 7, 1, 2) == completion_seed(3, 7, 1, 2)
    seeds = {completion_seed(3, step, p, g) for step in range(4) for p in range(8) for g in range(4)}
    assert len(seeds) == 128 and all(0 <= s < 2**63 for s in seeds)


def test_a_completion_does_not_depend_on_its_batch_neighbours(grit_cache, tiny_model_paths):
    cfg = compose_config("train", "dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2",
                         "rollout.max_new_tokens=12", "rollout.stop_strings=[]")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu")
    rollout = HFRollout(adapter, cfg.rollout)
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:3]]
    seeds = [completion_seed(0, 1, p, g) for p in range(3) for g in range(2)]
    together = rollout.generate(model, rows[:3], texts, num_generations=2, completion_seeds=seeds)
    for p in range(3):
        torch.manual_seed(1234 + p)  # the global RNG plays no part
        alone = rollout.generate(model, rows[p : p + 1], texts[p : p + 1], num_generations=2,
                                 completion_seeds=seeds[2 * p : 2 * p + 2])
        for g in range(2):
            n = int(alone.completion_mask[g].sum())
            assert together.completion_ids[2 * p + g, :n].tolist() == alone.completion_ids[g, :n].tolist()
    assert len({tuple(r) for r in together.completion_ids.tolist()}) > 1, "different seeds, different samples"
