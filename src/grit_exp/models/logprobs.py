"""Log-probs of the chosen tokens over a large vocabulary without full float32 copies of the logits.

`selected_token_logprobs(logits, tokens, temperature, suppressed)` returns
log_softmax(logits / temperature, suppressed tokens masked to -inf)[token] in float32, for logits of
shape [batch, length, vocab] in any dtype. The plain computation (`plain_token_logprobs`, the
reference the tests and `benchmarks/bench_real_width.py` compare with) materialises an float32 copy of
the whole [batch, length, vocab] tensor for the division, another for the log-softmax (kept for the
backward pass), and one more gradient of each in the backward pass: at 151,936 tokens and 4 x 1000
positions, 2.4 GB each. Here a custom autograd function works through a few positions at a time
(~64 MB of float32 per chunk): the forward pass keeps only each position's log-sum-exp, the backward
pass recomputes the chunk's softmax and writes d logp / d logits = (onehot - softmax) / temperature
straight into a gradient of the logits' own dtype. What stays alive between the passes is the logits
tensor itself (which the model produced anyway) and [batch, length] floats.

Left out: top-k / top-p truncation (as before: these are the log-probs of the tempered full
distribution) and fusing the lm-head matmul into the chunks (the logits are still computed whole).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

CHUNK_BYTES = 64 << 20  # float32 working memory per chunk of positions


def plain_token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0,
                         suppressed: Sequence[int] = ()) -> torch.Tensor:
    """The straightforward computation (full float32 copies); the reference for tests and benchmarks."""
    logits = logits.float() / temperature  # a copy even at temperature 1 (the masking below is in place)
    if suppressed:
        logits[..., list(suppressed)] = float("-inf")
    return torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def selected_token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0,
                            suppressed: Sequence[int] = (), chunk_positions: int | None = None) -> torch.Tensor:
    """float32 [batch, length] log-probs of `tokens` [batch, length] under `logits` [batch, length, vocab]
    (equal to `plain_token_logprobs` within float32 rounding, gradients included)."""
    if logits.shape[:-1] != tokens.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match tokens {tuple(tokens.shape)}")
    vocab = logits.shape[-1]
    chunk = chunk_positions or max(1, CHUNK_BYTES // (4 * vocab))
    suppressed_ids = torch.tensor(sorted(set(suppressed)), dtype=torch.long, device=logits.device)
    return _SelectedLogProbs.apply(logits, tokens, float(temperature), suppressed_ids, int(chunk))


def _chunks(batch: int, length: int, chunk: int) -> Iterator[tuple[int, slice]]:
    for row in range(batch):
        for start in range(0, length, chunk):
            yield row, slice(start, min(start + chunk, length))


def _tempered(logits: torch.Tensor, temperature: float, suppressed: torch.Tensor) -> torch.Tensor:
    """A float32 copy of a [positions, vocab] chunk, divided by the temperature, suppressed ids at -inf."""
    if temperature != 1.0:
        x = torch.div(logits if logits.dtype == torch.float32 else logits.float(), temperature)
    else:
        x = logits.to(torch.float32, copy=True)
    if suppressed.numel():
        x.index_fill_(-1, suppressed, float("-inf"))
    return x


class _SelectedLogProbs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, tokens: torch.Tensor, temperature: float, suppressed: torch.Tensor,
                chunk: int) -> torch.Tensor:
        batch, length, _ = logits.shape
        out = torch.empty(batch, length, dtype=torch.float32, device=logits.device)
        lse = torch.empty_like(out)
        for row, cols in _chunks(batch, length, chunk):
            x = _tempered(logits[row, cols], temperature, suppressed)
            lse[row, cols] = torch.logsumexp(x, dim=-1)
            out[row, cols] = x.gather(-1, tokens[row, cols].unsqueeze(-1)).squeeze(-1) - lse[row, cols]
        ctx.save_for_backward(logits, tokens, lse, suppressed)
        ctx.temperature, ctx.chunk = temperature, chunk
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        logits, tokens, lse, suppressed = ctx.saved_tensors
        batch, length, _ = logits.shape
        t = ctx.temperature
        grad = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)
        for row, cols in _chunks(batch, length, ctx.chunk):
            g = (grad_out[row, cols].float() / t).unsqueeze(-1)  # [positions, 1]: d/dx of x / t folded in
            # softmax = exp(logits / t - lse) = exp((logits - t * lse) / t), in one new float32 chunk
            p = torch.sub(logits[row, cols], lse[row, cols].unsqueeze(-1), alpha=t)
            if t != 1.0:
                p.div_(t)
            p.exp_()
            if suppressed.numel():
                p.index_fill_(-1, suppressed, 0.0)
            out = grad[row, cols]
            if out.dtype == torch.float32:
                torch.mul(p, g.neg(), out=out)  # -g * softmax, written in place
            else:
                out.copy_(p.mul_(g.neg()))
            out.scatter_add_(-1, tokens[row, cols].unsqueeze(-1), g.to(out.dtype))  # + g at the chosen token
        return grad, None, None, None, None
