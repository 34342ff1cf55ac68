"""The rollout decode loop: each prompt prefilled once for its G completions, finished rows dropped.

HF `generate` cannot do either, and both are most of a rollout's wasted work: it prefills (vision
tower and prompt) every completion of a group separately although they share the prompt, and it keeps
every row in the decode batch until the last one ends, computing (then discarding) tokens for rows
already past their end (40% of the row-steps on the GRPO benchmark's work). This loop prefills each
distinct prompt once, copies its KV cache to its completions (`InPlaceLayer.batch_select_indices`),
and removes finished rows from the batch (KV cache, attention mask, positions) as they accumulate.
Rows do not interact, so every completion's tokens are those `generate` produces for it: the same
model calls, the same positions (the model's own `_prepare_position_ids_for_generation`, then + 1
per token, as `generate` does; Qwen2.5-VL's 3-D mRoPE rows follow their completion), the same
suppressed tokens, EOS / stop-string / length rules and padding after a row's end
(tests/rollout/test_decode.py checks the tokens against `generate`, greedy and seeded).

What it supports, and nothing more: greedy decoding and per-completion seeded sampling
(`PerRowSeededSampler.draw`: all of grit-exp's rollouts and evaluations), one KV-cache layout (the
in-place cache, `rollout/kv_cache.py`), stop criteria that look at token ids. Left out: beam search,
HF's global-RNG sampling, penalties (grit-exp sets all of them neutral), streaming, synced GPUs
(each process decodes its own rows; ZeRO-3 parameters are gathered around the whole rollout).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from transformers import PreTrainedModel

from grit_exp.rollout.kv_cache import in_place_cache

# (scores [rows, vocab] float32, the rows' completion indices) -> next token per row
ChooseTokens = Callable[[torch.Tensor, list[int]], torch.Tensor]
# (every completion's ids so far [N, prompt + new], scores) -> bool per row; `StoppingCriteria`-shaped
StopRule = Callable[..., torch.Tensor]


def greedy_tokens(scores: torch.Tensor, rows: list[int]) -> torch.Tensor:
    return scores.argmax(-1)


def should_drop(finished_in_batch: int, batch: int) -> bool:
    """Drop finished rows once they are an eighth of the batch: selecting rows copies the KV cache
    (about one decode step's attention reads), so dropping them one at a time costs more than it saves
    (measured: benchmarks/README.md)."""
    return finished_in_batch > 0 and 8 * finished_in_batch >= batch


@torch.no_grad()
def decode(
    model: torch.nn.Module,
    generating_model: PreTrainedModel,
    inputs: Mapping[str, torch.Tensor],
    repeats: int,
    max_new_tokens: int,
    choose: ChooseTokens,
    eos_token_ids: list[int],
    pad_token_id: int | None,
    suppressed_token_ids: list[int],
    stop_rules: list[StopRule] = (),
    observers: list[StopRule] = (),
) -> torch.Tensor:
    """New token ids [len(prompts) * repeats, T] (T <= max_new_tokens: up to the last row's end), padded
    after each row's end. `inputs`: the distinct prompts' processor outputs, left-padded; completion
    i * repeats + j continues prompt i. `model` is called (it may wrap `generating_model`, e.g. PEFT).
    `stop_rules` end a row (e.g. `StopStringsByTokenIds`), called with the unfinished rows' ids;
    `observers` are called like them with every row's ids (finished rows show padding) and stop nothing."""
    input_ids, prompt_mask = inputs["input_ids"], inputs["attention_mask"]
    prompts, prompt_length = input_ids.shape
    device = input_ids.device
    total = prompts * repeats
    pad = pad_token_id if pad_token_id is not None else eos_token_ids[0]
    eos = torch.tensor(eos_token_ids, device=device)
    suppressed = torch.tensor(suppressed_token_ids, dtype=torch.long, device=device)

    # prefill: each distinct prompt once, then its cache, last logits and positions copied to its completions
    positions = generating_model._prepare_position_ids_for_generation(input_ids, dict(inputs))
    padded = bool((prompt_mask == 0).any())  # `generate` drops an all-ones mask; so do we (same kernels)
    cache = in_place_cache(max_new_tokens)
    prefill = {**inputs, "attention_mask": prompt_mask if padded else None}
    out = model(**prefill, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
    source = torch.arange(prompts, device=device).repeat_interleave(repeats)
    cache.batch_select_indices(source)
    logits = out.logits[:, -1].float().index_select(0, source)
    last_position = positions[..., -1:].index_select(-2, source)
    del out

    tokens = torch.full((total, prompt_length + max_new_tokens), pad, dtype=torch.long, device=device)
    tokens[:, :prompt_length] = input_ids.index_select(0, source)
    mask = torch.ones(total, prompt_length + max_new_tokens, dtype=prompt_mask.dtype, device=device)
    mask[:, :prompt_length] = prompt_mask.index_select(0, source)

    rows = torch.arange(total, device=device)  # the decode batch: completion index of each row
    running = torch.ones(total, dtype=torch.bool, device=device)  # False: ended, not yet dropped
    steps = 0
    for step in range(max_new_tokens):
        length = prompt_length + step + 1  # tokens per completion once this step's token is written
        if len(suppressed):
            logits.index_fill_(-1, suppressed, float("-inf"))
        row_list = rows.tolist()
        chosen = torch.where(running, choose(logits, row_list), pad)
        tokens[rows, length - 1] = chosen
        steps = step + 1
        ended = running & torch.isin(chosen, eos)
        if stop_rules:
            live = running.nonzero().flatten()
            window = tokens.index_select(0, rows.index_select(0, live))[:, :length]
            for rule in stop_rules:
                ended[live] |= rule(window, logits.index_select(0, live)).to(device)
        for observer in observers:
            observer(tokens[:, :length], logits)
        running &= ~ended
        if not running.any() or step == max_new_tokens - 1:
            break
        if should_drop(int((~running).sum()), len(rows)):
            keep = running.nonzero().flatten()
            cache.batch_select_indices(keep)
            rows, chosen = rows.index_select(0, keep), chosen.index_select(0, keep)
            last_position = last_position.index_select(-2, keep)
            running = running.index_select(0, keep)
        last_position = last_position + 1
        out = model(input_ids=chosen[:, None], attention_mask=mask.index_select(0, rows)[:, :length] if padded else None,
                    position_ids=last_position, cache=cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1].float()
        del out
    return tokens[:, prompt_length : prompt_length + steps]
