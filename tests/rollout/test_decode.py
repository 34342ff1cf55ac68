"""The decode loop (`rollout/decode.py`) gives exactly HF `generate`'s tokens: greedy and per-completion
seeded, both model families, prompts of different lengths (left padding), rows ending at different
steps; whether finished rows are dropped as soon as one ends or never, and with each prompt prefilled
once for its completions."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList

import grit_exp.rollout.decode as decode_module
from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import load_dataset_splits
from grit_exp.models import build_adapter
from grit_exp.rollout.decode import decode, greedy_tokens
from grit_exp.rollout.hf import HFRollout, only_these_settings
from grit_exp.rollout.kv_cache import in_place_cache
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler, completion_seed
from tests.helpers.configs import compose_config

G, MAX_NEW = 3, 24


@pytest.fixture(scope="module", params=["tiny_qwen2_5_vl", "tiny_internvl"])
def setup(request, grit_cache, tiny_model_paths):
    cfg = compose_config("train", f"model={request.param}", "dataset.synthetic.num_train=8",
                         "dataset.synthetic.num_val=2", f"rollout.max_new_tokens={MAX_NEW}",
                         "rollout.stop_strings=[]",
                         # the mixed questions (the demo's data asks one): prompts of different lengths
                         "dataset.synthetic.kind_weights=[0.6,0.2,0.2]",
                         "dataset.synthetic.count_targets=9")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # larger random weights than the tiny model's init: greedy text varies across rows
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.15, generator=generator)
    by_length = sorted(rows, key=lambda r: len(r.question))
    chosen = [by_length[0], by_length[-1], by_length[len(rows) // 2]]
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in chosen]
    prompts = adapter.build_prompt_batch(chosen, texts)
    assert not prompts.inputs["attention_mask"].all(), "prompts of different lengths: some rows are padded"
    return cfg, adapter, model, prompts


def _sampler(greedy: bool):
    seeds = [completion_seed(0, 1, p, g) for p in range(3) for g in range(G)]
    return None if greedy else PerRowSeededSampler(seeds, 0.9, 50, 1.0, torch.device("cpu"))


def _generate(setup, greedy: bool, eos: list[int]) -> torch.Tensor:
    """HF `generate` on each prompt repeated G times (the reference), new tokens only."""
    cfg, adapter, model, prompts = setup
    config = HFRollout(adapter, cfg.rollout).generation_config(greedy=True)
    config.eos_token_id = eos
    sampler = _sampler(greedy)
    repeated = prompts.repeat_interleave(G)
    with only_these_settings(model, config), torch.no_grad():
        out = model.generate(**repeated.inputs, generation_config=config, past_key_values=in_place_cache(MAX_NEW),
                             logits_processor=LogitsProcessorList([sampler] if sampler else []))
    return out[:, repeated.prompt_length:]


def _decode(setup, greedy: bool, eos: list[int]) -> torch.Tensor:
    _, adapter, model, prompts = setup
    sampler = _sampler(greedy)
    return decode(model, model, prompts.inputs, G, MAX_NEW, greedy_tokens if greedy else sampler.draw, eos,
                  adapter.pad_token_id, adapter.suppressed_token_ids)


def _end_token(free: torch.Tensor) -> int:
    """The token of the free run whose first occurrence is at the most different steps across rows."""
    def first_steps(token: int) -> set[int]:
        hits = free.eq(token)
        return {int(h.nonzero()[0]) if h.any() else free.shape[1] for h in hits}

    best = max(sorted(set(free.flatten().tolist())), key=lambda t: len(first_steps(t)))
    assert len(first_steps(best)) >= 3, free
    return best


@pytest.mark.parametrize("greedy", [True, False], ids=["greedy", "seeded"])
def test_same_tokens_as_generate_whether_finished_rows_are_dropped_or_not(setup, greedy, monkeypatch):
    _, adapter, _, _ = setup
    free = _generate(setup, greedy, adapter.eos_token_ids)
    eos = [*adapter.eos_token_ids, _end_token(free)]  # an extra end token so that rows end at different steps
    expected = _generate(setup, greedy, eos)
    assert not torch.equal(expected, free)

    drops = []

    def drop_at_once(finished: int, batch: int) -> bool:
        drops.append(finished > 0)
        return finished > 0

    for rule in (drop_at_once, lambda finished, batch: False, decode_module.should_drop):
        monkeypatch.setattr(decode_module, "should_drop", rule)
        got = _decode(setup, greedy, eos)
        assert torch.equal(got, expected), rule
    assert any(drops), "rows were dropped mid-decode"
    assert torch.equal(_decode(setup, greedy, adapter.eos_token_ids), free)


def test_rollout_samples_from_the_global_generator_without_seeds(setup):
    cfg, adapter, model, _ = setup
    rollout = HFRollout(adapter, cfg.rollout)
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:2]]
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        runs.append(rollout.generate(model, rows[:2], texts, num_generations=2).completion_ids.tolist())
    assert runs[0] == runs[1] and runs[0] != runs[2]
