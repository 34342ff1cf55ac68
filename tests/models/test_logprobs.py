"""The chunked log-probs of the chosen tokens equal the plain full-vocabulary computation (values and
gradients), with suppressed tokens masked, at any temperature, chunk size and logits dtype; and
`completion_logprobs` returns the same as before on a real tiny model."""

from __future__ import annotations

import pytest
import torch

from grit_exp.models.logprobs import plain_token_logprobs, selected_token_logprobs


def _case(dtype: torch.dtype, vocab: int = 1000, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(3, 7, vocab, generator=g) * 4).to(dtype)
    suppressed = [0, 5, vocab - 1]
    tokens = torch.randint(1, vocab - 1, (3, 7), generator=g)
    tokens[tokens == 5] = 6
    return logits, tokens, suppressed


@pytest.mark.parametrize("temperature", [1.0, 0.9, 1.7])
@pytest.mark.parametrize("chunk", [1, 3, None])
def test_values_and_gradients_equal_the_plain_computation(temperature, chunk) -> None:
    logits, tokens, suppressed = _case(torch.float32)
    weights = torch.randn(3, 7, generator=torch.Generator().manual_seed(1))
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = selected_token_logprobs(a, tokens, temperature, suppressed, chunk_positions=chunk)
    plain = plain_token_logprobs(b, tokens, temperature, suppressed)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    (ours * weights).sum().backward()
    (plain * weights).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)
    assert torch.all(a.grad[..., suppressed] == 0)


def test_bfloat16_logits_give_float32_logprobs_and_a_bfloat16_gradient() -> None:
    logits, tokens, suppressed = _case(torch.bfloat16)
    a = logits.clone().requires_grad_(True)
    b = logits.clone().requires_grad_(True)
    ours = selected_token_logprobs(a, tokens, 0.9, suppressed, chunk_positions=2)
    plain = plain_token_logprobs(b, tokens, 0.9, suppressed)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)
    ours.sum().backward()
    plain.sum().backward()
    assert a.grad.dtype == torch.bfloat16
    torch.testing.assert_close(a.grad.float(), b.grad.float(), rtol=1e-2, atol=1e-3)


def test_a_non_contiguous_view_of_logits_is_not_copied_and_works() -> None:
    logits, tokens, suppressed = _case(torch.float32)
    view = logits[:, :-1, :]  # as one_pass_logits returns it
    torch.testing.assert_close(selected_token_logprobs(view, tokens[:, :-1], 1.0, suppressed),
                               plain_token_logprobs(view, tokens[:, :-1], 1.0, suppressed))


def test_completion_logprobs_match_the_plain_computation_on_a_tiny_model(tiny_model_paths, tmp_path) -> None:
    from grit_exp.models import build_adapter
    from tests.models.model_helpers import make_rows, model_cfg

    adapter = build_adapter(model_cfg("tiny_qwen2_5_vl", tiny_model_paths["tiny_qwen2_5_vl"]))
    model = adapter.load_model("cpu", dtype="float32")
    rows = make_rows(tmp_path)
    prompt = adapter.build_prompt_batch(rows, ["How many red squares are there?"] * 2)
    completion = torch.randint(0, 200, (2, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(completion)
    mask[1, 4:] = 0
    ours = adapter.completion_logprobs(model, prompt, completion, mask, temperature=0.9)
    logits = adapter.one_pass_logits(model, prompt, completion, mask)
    plain = plain_token_logprobs(logits, completion, 0.9, adapter.suppressed_token_ids).masked_fill(mask == 0, 0.0)
    torch.testing.assert_close(ours, plain, rtol=1e-4, atol=1e-5)
