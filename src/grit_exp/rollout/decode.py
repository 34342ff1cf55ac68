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

Zoom turns (`tool`, grit_exp.rollout.zoom): a row whose newest token closes a zoom call gets the tool turn (a
crop and its chat markup) written into its KV cache in one forward pass over the batch, the other rows getting
masked columns there, and resumes (tests/rollout/test_zoom_rollout.py: the tokens of HF `generate` re-run on
the whole conversation at every turn). Without `tool` nothing of this runs.

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
from grit_exp.rollout.zoom.turns import Insertion, ZoomSession

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
    tool: ZoomSession | None = None,
) -> torch.Tensor:
    """New token ids [len(prompts) * repeats, T] (T <= max_new_tokens: up to the last row's end), padded
    after each row's end. `inputs`: the distinct prompts' processor outputs, left-padded; completion
    i * repeats + j continues prompt i. `model` is called (it may wrap `generating_model`, e.g. PEFT).
    `stop_rules` end a row (e.g. `StopStringsByTokenIds`), called with the unfinished rows' ids;
    `observers` are called like them with every row's ids (finished rows show padding) and stop nothing.
    `tool` (zoom turns, `rollout/zoom/turns.py`): a row whose newest token closes a call gets the tool turn
    appended to its KV cache (`_append_tool_turns`) and resumes; the other rows get masked columns there, so
    the returned ids hold holes (columns whose `tool.column_mask` is 0) that `rollout/hf.py` removes."""
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
    room = max_new_tokens + (tool.room if tool is not None else 0)
    cache = in_place_cache(room)
    prefill = {**inputs, "attention_mask": prompt_mask if padded else None}
    out = model(**prefill, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
    source = torch.arange(prompts, device=device).repeat_interleave(repeats)
    cache.batch_select_indices(source)
    logits = out.logits[:, -1].float().index_select(0, source)
    last_position = positions[..., -1:].index_select(-2, source)
    del out

    tokens = torch.full((total, prompt_length + room), pad, dtype=torch.long, device=device)
    tokens[:, :prompt_length] = input_ids.index_select(0, source)
    mask = torch.ones(total, prompt_length + room, dtype=prompt_mask.dtype, device=device)
    mask[:, :prompt_length] = prompt_mask.index_select(0, source)

    rows = torch.arange(total, device=device)  # the decode batch: completion index of each row
    running = torch.ones(total, dtype=torch.bool, device=device)  # False: ended, not yet dropped
    steps = 0
    length = prompt_length  # columns per completion (prompt, new tokens, tool turns)
    turn_start = [prompt_length] * total  # tool: the column where each completion's current model turn starts
    for step in range(max_new_tokens):
        length += 1  # tokens per completion once this step's token is written
        if len(suppressed):
            logits.index_fill_(-1, suppressed, float("-inf"))
        row_list = rows.tolist()
        chosen = torch.where(running, choose(logits, row_list), pad)
        tokens[rows, length - 1] = chosen
        steps = step + 1
        ended = running & torch.isin(chosen, eos)
        if stop_rules:
            live = running.nonzero().flatten()
            if tool is None:
                window = tokens.index_select(0, rows.index_select(0, live))[:, :length]
            else:  # without the masked columns (a stop string may straddle another row's tool turn)
                window = _recent_tokens(tokens, mask, rows.index_select(0, live), length, pad)
            for rule in stop_rules:
                ended[live] |= rule(window, logits.index_select(0, live)).to(device)
        for observer in observers:
            observer(tokens[:, :length], logits)
        running &= ~ended
        if not running.any() or step == max_new_tokens - 1:
            break
        calling = None
        if tool is not None:  # rows whose newest token closes a zoom call (not on the last step: no budget left)
            live = running.nonzero().flatten()
            calling = torch.zeros_like(running)
            window = _recent_tokens(tokens, mask, rows.index_select(0, live), length, pad)
            calling[live] = tool.rule(window, logits.index_select(0, live)).to(device)
        if should_drop(int((~running).sum()), len(rows)):
            keep = running.nonzero().flatten()
            cache.batch_select_indices(keep)
            rows, chosen = rows.index_select(0, keep), chosen.index_select(0, keep)
            last_position = last_position.index_select(-2, keep)
            running = running.index_select(0, keep)
            calling = calling.index_select(0, keep) if calling is not None else None
        last_position = last_position + 1
        out = model(input_ids=chosen[:, None], attention_mask=mask.index_select(0, rows)[:, :length] if padded else None,
                    position_ids=last_position, cache=cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1].float()
        del out
        if calling is not None and calling.any():
            padded = True  # other rows now hold masked columns: every later step passes the mask
            tokens, mask, length, last_position = _append_tool_turns(
                model, generating_model, tool, cache, tokens, mask, length, rows, calling, last_position, logits,
                turn_start, pad, max_new_tokens - steps)
    if tool is not None:
        tool.column_mask, tool.first_column = mask[:, prompt_length:length], prompt_length
    return tokens[:, prompt_length:length]


def _recent_tokens(tokens: torch.Tensor, mask: torch.Tensor, completions: torch.Tensor, length: int, pad: int,
                   window: int = 256) -> torch.Tensor:
    """The last `window` tokens of each completion without its masked columns (left-filled with `pad`)."""
    out = torch.full((len(completions), window), pad, dtype=tokens.dtype, device=tokens.device)
    for i, c in enumerate(completions.tolist()):
        real = tokens[c, :length][mask[c, :length].bool()][-window:]
        out[i, window - len(real):] = real
    return out


def _append_tool_turns(model, generating_model, tool: ZoomSession, cache, tokens, mask, length: int,
                       rows: torch.Tensor, calling: torch.Tensor, last_position: torch.Tensor, logits: torch.Tensor,
                       turn_start: list[int], pad: int, budget: int):
    """Append each calling row's tool turn to its KV cache in one forward pass over the batch: the turns are
    right-aligned in K new columns (K: the longest turn), which are masked for the other rows and before
    shorter turns. The calling rows' next-token logits (written into `logits`) are those after their turn.
    `budget`: the tokens still to come. Returns (tokens, mask, length, last_position) with the K columns added."""
    device = tokens.device
    batch_rows = calling.nonzero().flatten().tolist()
    completions = [int(rows[r]) for r in batch_rows]
    turns = []
    for c in completions:
        turn_mask = mask[c, turn_start[c]:length].bool()
        turns.append(tool.respond(c, tokens[c, turn_start[c]:length][turn_mask].tolist()))
    k = max(len(t.ids) for t in turns)
    if length + k + budget > tokens.shape[1]:  # more than the room announced: grow (the KV cache grows itself)
        extra = max(length + k + budget - tokens.shape[1], tokens.shape[1] // 2)
        tokens = torch.cat([tokens, tokens.new_full((tokens.shape[0], extra), pad)], dim=1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], extra))], dim=1)
    ids = torch.full((len(rows), k), pad, dtype=torch.long, device=device)
    new_mask = torch.zeros(len(rows), k, dtype=mask.dtype, device=device)
    positions = last_position.expand(*last_position.shape[:-1], k).clone()
    for r, c, turn in zip(batch_rows, completions, turns, strict=True):
        n = len(turn.ids)
        ids[r, k - n:] = torch.tensor(turn.ids, dtype=torch.long, device=device)
        new_mask[r, k - n:] = 1
        tool.insertions.append(Insertion(c, length + k - n, turn))  # absolute column of its first token
    mask[rows, length:length + k] = new_mask
    tokens[rows, length:length + k] = ids
    for r, c, turn in zip(batch_rows, completions, turns, strict=True):
        real = mask[c, :length + k].bool()
        sequence = tokens[c, :length + k][real]
        positions[..., r, k - len(turn.ids):] = tool.adapter.turn_positions(
            generating_model, sequence, tool.image_grids(c), last_position[..., r, :], len(turn.ids))
        turn_start[c] = length + k
    images = [t.pixel_values for t in turns if t.pixel_values is not None]
    grids = [t.image_grid_thw for t in turns if t.image_grid_thw is not None]
    extra = {}
    if images:
        extra["pixel_values"] = torch.cat(images, dim=0).to(device)
    if grids:
        extra["image_grid_thw"] = torch.cat(grids, dim=0).to(device)
    out = model(input_ids=ids, attention_mask=mask.index_select(0, rows)[:, :length + k], position_ids=positions,
                cache=cache, use_cache=True, logits_to_keep=1, **extra)
    index = torch.tensor(batch_rows, dtype=torch.long, device=device)
    logits[index] = out.logits[index, -1].float()
    last_position = last_position.clone()
    last_position[..., index, :] = positions[..., index, -1:]
    return tokens, mask, length + k, last_position
