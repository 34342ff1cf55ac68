"""A group's completions share their prompt's forward pass (run once, vision tower included, its KV cache
copied to each completion): the same log-probs and the same gradients as one pass over each prompt +
completion, for both families, whole groups and micro-batches that split a group, completions of
different lengths; with gradient checkpointing (no cache in training) the single pass runs. Whatever the
batch holds (one completion, no repeated prompt, one-token completions), the number of forward passes is
the same: processes that run different numbers hang under ZeRO-3 and DDP."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from model_helpers import TINY, make_rows, model_cfg

from grit_exp.models import build_adapter

G, T = 3, 7
LENGTHS = [7, 3, 1, 5, 7, 2, 6, 4, 7]  # real tokens of each completion; the rest are padding


@pytest.fixture(scope="module", params=list(TINY))
def adapter(request, tiny_model_paths):
    return build_adapter(model_cfg(request.param, tiny_model_paths[request.param]))


def _batch(adapter, tmp_path):
    rows = make_rows(tmp_path, sizes=((112, 112), (150, 100), (100, 150)))
    texts = ["\nQuestion: How many?", "\nQuestion: Where is the red square in this picture?", "\nQuestion: Red?"]
    prompt = adapter.build_prompt_batch(rows, texts).repeat_interleave(G)
    special = set(adapter.tokenizer.all_special_ids)
    ordinary = torch.tensor([i for i in range(len(adapter.tokenizer)) if i not in special])
    generator = torch.Generator().manual_seed(0)
    ids = ordinary[torch.randint(len(ordinary), (len(prompt), T), generator=generator)]
    mask = (torch.arange(T) < torch.tensor(LENGTHS)[:, None]).long()
    ids = ids.masked_fill(mask == 0, adapter.pad_token_id)
    return prompt, ids, mask


def _one_pass_logprobs(adapter, model, prompt, ids, mask, temperature=1.0):
    """The plain computation: one forward pass over prompt + completion, log-softmax, the chosen tokens."""
    logits = adapter.one_pass_logits(model, prompt, ids, mask).float() / temperature
    if adapter.suppressed_token_ids:
        logits[..., adapter.suppressed_token_ids] = float("-inf")
    chosen = torch.log_softmax(logits, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    return chosen.masked_fill(mask == 0, 0.0)


def _logprobs_and_grads(adapter, model, prompt, ids, mask, one_pass=False):
    model.zero_grad(set_to_none=True)
    if one_pass:
        logp = _one_pass_logprobs(adapter, model, prompt, ids, mask, temperature=0.9)
    else:
        logp = adapter.completion_logprobs(model, prompt, ids, mask, temperature=0.9)
    (logp.sum() / mask.sum()).backward()
    return logp.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _pixel_rows_seen(model):
    """Record the image rows (pixel_values) of every forward call."""
    seen: list[int] = []

    def hook(module, args, kwargs):
        pixels = kwargs.get("pixel_values")
        seen.append(0 if pixels is None else int(pixels.shape[0]))

    return seen, model.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("rows", [slice(0, 9), slice(2, 7), slice(5, 6)], ids=["groups", "split_groups", "one_row"])
def test_same_logprobs_and_gradients_as_one_pass(adapter, tmp_path, rows):
    model = adapter.load_model("cpu").train()
    prompt, ids, mask = _batch(adapter, tmp_path)
    part = prompt.take(list(range(len(prompt)))[rows])
    ids, mask = ids[rows], mask[rows]
    seen, handle = _pixel_rows_seen(model)
    shared, shared_grads = _logprobs_and_grads(adapter, model, part, ids, mask)
    handle.remove()
    single, single_grads = _logprobs_and_grads(adapter, model, part, ids, mask, one_pass=True)

    firsts, _ = part.distinct_prompts()  # the prompt pass saw each distinct image once, then the completions ran alone
    distinct_pixels = sum(part.image_slices[r][1] - part.image_slices[r][0] for r in firsts)
    assert seen == [distinct_pixels, 0]
    assert torch.allclose(shared, single, atol=2e-5, rtol=0), (shared - single).abs().max()
    assert shared.masked_select(mask == 0).eq(0).all() and shared.masked_select(mask == 1).lt(0).all()
    assert shared_grads.keys() == single_grads.keys() and shared_grads
    for name, grad in single_grads.items():
        scale = grad.abs().max().clamp(min=1e-8)
        assert (shared_grads[name] - grad).abs().max() / scale < 1e-4, name


def test_one_completion_token(adapter, tmp_path):
    model = adapter.load_model("cpu").eval()
    prompt, ids, mask = _batch(adapter, tmp_path)
    with torch.no_grad():
        shared = adapter.completion_logprobs(model, prompt, ids[:, :1], mask[:, :1])
        single = _one_pass_logprobs(adapter, model, prompt, ids[:, :1], mask[:, :1])
    assert shared.shape == (len(prompt), 1) and torch.allclose(shared, single, atol=2e-5, rtol=0)


@pytest.mark.parametrize("grad", [True, False], ids=["policy", "reference"])
def test_every_batch_runs_the_same_number_of_forward_passes(adapter, tmp_path, grad):
    """Micro-batches of 1, groups split across micro-batches, no repeated prompt, one-token completions:
    always two forward passes (the count a process's peers expect under ZeRO-3 and DDP)."""
    model = adapter.load_model("cpu").train(grad)
    prompt, ids, mask = _batch(adapter, tmp_path)
    calls, backward_calls = [], []
    handle = model.register_forward_pre_hook(lambda module, args: calls.append(1))
    # ZeRO-3 also gathers parameters in the backward of every forward pass in the graph: both passes must be in it
    backward = model.model.language_model.layers[0].register_full_backward_hook(lambda *args: backward_calls.append(1))
    batches = {
        "whole groups": (prompt, ids, mask),
        "one completion": (prompt.take([4]), ids[4:5], mask[4:5]),
        "split group": (prompt.take([2, 3]), ids[2:4], mask[2:4]),
        "no repeated prompt": (replace(prompt, prompt_index=None), ids, mask),
        "one-token completions": (prompt.take([0, 1]), ids[:2, :1], mask[:2, :1]),
    }
    counts = {}
    for name, (p, i, m) in batches.items():
        calls.clear()
        backward_calls.clear()
        with torch.set_grad_enabled(grad):
            logp = adapter.completion_logprobs(model, p, i, m)
            if grad:
                logp.sum().backward()
        counts[name] = (len(calls), len(backward_calls))
    handle.remove()
    backward.remove()
    assert set(counts.values()) == {(2, 2 if grad else 0)}, counts


def test_gradient_checkpointing_runs_one_pass(adapter, tmp_path):
    """Checkpointed layers keep no KV cache while training: the single pass runs (and gives the same)."""
    model = adapter.load_model("cpu")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    prompt, ids, mask = _batch(adapter, tmp_path)
    seen, handle = _pixel_rows_seen(model)
    checkpointed, _ = _logprobs_and_grads(adapter, model, prompt, ids, mask)
    handle.remove()
    assert seen == [prompt.inputs["pixel_values"].shape[0]]
    model.gradient_checkpointing_disable()
    plain, _ = _logprobs_and_grads(adapter, model, prompt, ids, mask)
    assert torch.allclose(checkpointed, plain, atol=2e-5, rtol=0)
