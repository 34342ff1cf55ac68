"""The update with zoom turns: log-probs and gradients of completions holding tool turns (crops, text replies)
equal a plain single forward pass over each whole conversation on its own (batch of one, no padding, the
model computing its own positions from the images in order: Qwen2.5-VL's 3-D mRoPE over several images),
both with the shared-prompt pass (KV cache) and with the one-pass path (gradient checkpointing); tool-turn
tokens get log-prob 0 (never trained) while attended to; micro-batches (`Rollout.select`) keep the tool turns."""

from __future__ import annotations

import pytest
import torch

from grit_exp.data.prompts import build_user_text
from grit_exp.models.logprobs import plain_token_logprobs
from tests.helpers.zoom_script import scripted_rollout, zoom_test_model

G, MAX_NEW = 2, 64
pytestmark = pytest.mark.slow  # a scripted zoom rollout per family first (about a minute on a loaded machine)


@pytest.fixture(scope="module", params=["tiny_qwen2_5_vl", "tiny_internvl"])
def setup(request, grit_cache, tiny_model_paths):
    cfg, adapter, model, rows = zoom_test_model(request.param, MAX_NEW)
    by_length = sorted(rows, key=lambda r: len(r.question))
    chosen = [by_length[0], by_length[-1], by_length[len(rows) // 2]]
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in chosen]
    _, rollout = scripted_rollout(adapter, model, cfg.rollout.zoom, chosen, texts, G, MAX_NEW)
    assert rollout.tool_turns.tool_mask.any() and any(p is not None for p in rollout.tool_turns.pixel_values)
    return cfg, adapter, model, rollout


def _single_pass(adapter, model, rollout, c: int) -> torch.Tensor:
    """Log-probs of completion c's model-written tokens from one forward pass over its whole conversation."""
    prompt = rollout.prompt.inputs
    real = prompt["attention_mask"][c].bool()
    turns = rollout.tool_turns
    span = (rollout.completion_mask[c] + turns.tool_mask[c]).bool()
    completion = rollout.completion_ids[c][span]
    ids = torch.cat([prompt["input_ids"][c][real], completion])[None]
    a, b = rollout.prompt.image_slices[c]
    pixels = [prompt["pixel_values"][a:b]] + ([turns.pixel_values[c]] if turns.pixel_values[c] is not None else [])
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": torch.cat(pixels)}
    if "image_grid_thw" in prompt:
        grids = [prompt["image_grid_thw"][c:c + 1]] + ([turns.image_grid_thw[c]] if turns.image_grid_thw[c] is not None
                                                       else [])
        inputs["image_grid_thw"] = torch.cat(grids)
        inputs["mm_token_type_ids"] = (ids == adapter.processor.image_token_id).int()
    logits = model(**inputs, use_cache=False).logits[0, -len(completion) - 1:-1]
    logp = plain_token_logprobs(logits[None], completion[None], 1.0, adapter.suppressed_token_ids)[0]
    model_written = rollout.completion_mask[c][span].bool()
    return logp[model_written]


@pytest.mark.parametrize("checkpointing", [False, True], ids=["shared_prompt", "one_pass"])
def test_logprobs_and_gradients_equal_one_pass_over_each_conversation(setup, checkpointing):
    _, adapter, model, rollout = setup
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
    try:
        model.zero_grad()
        logp = adapter.completion_logprobs(model, rollout.prompt, rollout.completion_ids, rollout.completion_mask,
                                           tool_turns=rollout.tool_turns)
        logp.sum().backward()
        got_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        model.zero_grad()
        assert torch.all(logp[rollout.tool_turns.tool_mask.bool()] == 0)
        total = 0.0
        for c in range(len(rollout.rows)):
            expected = _single_pass(adapter, model, rollout, c)
            got = logp[c][rollout.completion_mask[c].bool()]
            torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)  # float noise of a padded batch
            total = total + expected.sum()
        total.backward()
        expected_grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        assert expected_grads.keys() == got_grads.keys() and got_grads
        # as tests/models/test_shared_prompt.py, relative to each tensor's largest entry; tensors whose gradient is
        # zero in exact arithmetic (attention's key biases: softmax ignores a shift) hold rounding noise only and
        # are compared at the scale of the largest gradient of the model
        largest = max(float(g.abs().max()) for g in expected_grads.values())
        for name, grad in expected_grads.items():
            scale = max(float(grad.abs().max()), 1e-4 * largest)
            assert (got_grads[name] - grad).abs().max() / scale < 1e-4, name
    finally:
        model.zero_grad()
        if checkpointing:
            model.gradient_checkpointing_disable()
            model.eval()


def test_micro_batches_keep_their_tool_turns(setup):
    _, adapter, model, rollout = setup
    with torch.no_grad():
        whole = adapter.completion_logprobs(model, rollout.prompt, rollout.completion_ids, rollout.completion_mask,
                                            tool_turns=rollout.tool_turns)
        for sl in (slice(0, 2), slice(2, 5), slice(5, 6)):
            mb = rollout.select(sl)
            part = adapter.completion_logprobs(model, mb.prompt, mb.completion_ids, mb.completion_mask,
                                               tool_turns=mb.tool_turns)
            torch.testing.assert_close(part, whole[sl][:, :part.shape[1]], atol=2e-5, rtol=1e-5)
            assert not whole[sl][:, part.shape[1]:].any()
            assert mb.num_completion_tokens == rollout.num_completion_tokens[sl]


def test_every_micro_batch_runs_the_vision_tower_as_often(setup):
    """With or without crops, the second pass runs the vision tower once (ZeRO-3: the same gathers on every
    process); without crops it changes nothing: the log-probs equal those of the plain single pass."""
    _, adapter, model, rollout = setup
    visual = model.model.visual if hasattr(model.model, "visual") else model.model.vision_tower
    calls = []
    handle = visual.register_forward_hook(lambda *args: calls.append(1))
    try:
        counts = {}
        for name, sl in (("crops", slice(0, 2)), ("no_crops", slice(2, 4))):
            mb = rollout.select(sl)
            has_crops = any(p is not None for p in mb.tool_turns.pixel_values)
            assert has_crops == (name == "crops")
            calls.clear()
            with torch.no_grad():
                logp = adapter.completion_logprobs(model, mb.prompt, mb.completion_ids, mb.completion_mask,
                                                   tool_turns=mb.tool_turns)
            counts[name] = len(calls)
            if not has_crops:
                for i, c in enumerate(range(sl.start, sl.stop)):
                    with torch.no_grad():
                        expected = _single_pass(adapter, model, rollout, c)
                    torch.testing.assert_close(logp[i][mb.completion_mask[i].bool()], expected, atol=1e-4, rtol=1e-4)
        assert counts == {"crops": 2, "no_crops": 2}, counts
    finally:
        handle.remove()
