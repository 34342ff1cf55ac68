"""Stop strings by token ids stop exactly where HF's StopStringCriteria stops: on random token
sequences built from the stop string's pieces, and on real tiny-model generations."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from transformers import LogitsProcessorList, StoppingCriteriaList, StopStringCriteria

from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import load_dataset_splits
from grit_exp.models import build_adapter
from grit_exp.rollout.hf import HFRollout, only_these_settings
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler, completion_seed
from grit_exp.rollout.stop_strings import StopStringsByTokenIds
from tests.helpers.configs import compose_config


def _cfg(*overrides: str):
    return compose_config("train", "dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2",
                          *overrides)


@pytest.fixture(scope="module")
def adapter(grit_cache, tiny_model_paths):
    return build_adapter(_cfg().model)


def test_same_decision_as_hf_on_random_tails(adapter):
    """Every prefix of random sequences made of tokens that share characters with the stop strings."""
    tokenizer = adapter.tokenizer
    stop = ["</answer>", "ab c"]
    vocab = tokenizer.get_vocab()
    pieces = [i for t, i in vocab.items() if any(c in tokenizer.convert_tokens_to_string([t]) for c in "</answer>abc ")]
    assert len(pieces) > 50
    ours, theirs = StopStringsByTokenIds(tokenizer, stop), StopStringCriteria(tokenizer, stop)
    rng = random.Random(0)
    rows = []
    for _ in range(64):
        text = "".join(rng.choice(["</", "answer", ">", "<", "/", "an", "swer", "ab", " c", "x", " ab c", "</answer>"])
                       for _ in range(12))
        rows.append(tokenizer(text, add_special_tokens=False)["input_ids"][:30])
    rows += [[rng.choice(pieces) for _ in range(30)] for _ in range(64)]
    width = min(len(r) for r in rows)
    ids = torch.tensor([r[:width] for r in rows])
    matched = 0
    for end in range(1, width + 1):
        scores = torch.zeros(len(rows), 8)
        expected = theirs(ids[:, :end], scores)
        got = ours(ids[:, :end], scores)
        assert torch.equal(got, expected), end
        matched += int(expected.sum())
    assert matched > 20, "the sequences must hit the stop strings often"


def test_generation_stops_at_the_same_tokens_as_hf(adapter):
    """A real sampled generation with a stop string taken from an unstopped run's text (spanning tokens)."""
    cfg = _cfg("rollout.max_new_tokens=40", "rollout.stop_strings=[]")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    model = adapter.load_model("cpu")
    rollout = HFRollout(adapter, cfg.rollout)
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:4]]
    seeds = [completion_seed(0, 1, p, g) for p in range(4) for g in range(2)]
    free = rollout.generate(model, rows[:4], texts, num_generations=2, completion_seeds=seeds)
    pieces = adapter.tokenizer.convert_ids_to_tokens(free.completion_ids[0, 10:13].tolist())
    stop = adapter.tokenizer.convert_tokens_to_string(pieces)[1:]  # starts inside a token
    assert len(stop) >= 3

    prompt = adapter.build_prompt_batch(rows[:4], texts).repeat_interleave(2)
    config = rollout.generation_config(greedy=True)

    def generate(config, **kwargs) -> torch.Tensor:
        sampler = PerRowSeededSampler(seeds, 0.9, 50, 1.0, torch.device("cpu"))
        with only_these_settings(model, config), torch.no_grad():
            return model.generate(**prompt.inputs, generation_config=config, logits_processor=LogitsProcessorList([sampler]),
                                  **kwargs)

    with_hf_criterion = copy.deepcopy(config)
    with_hf_criterion.stop_strings = [stop]
    hf = generate(with_hf_criterion, tokenizer=adapter.tokenizer)
    ours = generate(config, stopping_criteria=StoppingCriteriaList([StopStringsByTokenIds(adapter.tokenizer, [stop])]))
    assert torch.equal(hf, ours)
    after_stop = hf[0, prompt.prompt_length + 13:]
    assert len(after_stop) and after_stop.eq(adapter.pad_token_id).all(), "row 0 stopped at the stop string"

    stopped = HFRollout(adapter, _cfg("rollout.max_new_tokens=40", f"rollout.stop_strings=['{stop}']").rollout)
    out = stopped.generate(model, rows[:4], texts, num_generations=2, completion_seeds=seeds)
    assert out.completion_ids[0].tolist()[: int(out.completion_mask[0].sum())] == free.completion_ids[0, :13].tolist()
    assert stop in out.texts[0]
