"""SFT targets that hold a zoom turn (issue #20): the warm start teaches the model to ask for a crop.

With `rollout.zoom.enabled`, a row whose gold chain has boxes is trained as a conversation
(`data/zoom_chain.py`): the model's first turn, which ends with the trigger on the gold box; the tool turn,
built by the rollout's own `ZoomSession.respond` (the same crop of the original image, the same turn template
and processor call, so the tokens and pixels are exactly those a rollout appends); then the model's answer
turn and its end-of-turn token. Only the two model turns are trained: the tool turn is attended to and masked
out of the loss through the GRPO update's own path (`ModelAdapter.completion_logprobs(..., tool_turns=...)`,
`models/zoom_logprobs.py`). Rows without gold boxes keep their single-turn target in the same batch.
Left out: the loss (`algorithm/losses.py`), the SFT loops (`algorithm/sft.py`).
"""

from __future__ import annotations

from typing import Any

import torch

from grit_exp.data.gold_chain import format_gold_chain
from grit_exp.data.prompts import build_user_text
from grit_exp.data.schema import GritRow
from grit_exp.data.zoom_chain import format_zoom_chain
from grit_exp.models.base import ModelAdapter, PromptBatch
from grit_exp.models.zoom_logprobs import ToolTurnInputs
from grit_exp.rollout.zoom.turns import ZoomSession


def zoom_sft_batch(adapter: ModelAdapter, rows: list[GritRow], prompt_cfg: Any, zoom: Any
                   ) -> tuple[PromptBatch, torch.Tensor, torch.Tensor, ToolTurnInputs]:
    """(prompt batch, target ids [B, T] right-padded, model-written mask [B, T], the tool turns inside them)."""
    missing = [r.source for r in rows if r.gold is None]
    if missing:
        raise ValueError(f"SFT needs gold chains; these rows have none: {', '.join(missing[:5])}")
    texts = [build_user_text(r.question, prompt_cfg, adapter.family) for r in rows]
    prompt = adapter.build_prompt_batch(rows, texts)
    session = ZoomSession(adapter, zoom, rows, list(prompt.geometries), repeats=1)
    end = adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def encode(text: str) -> list[int]:
        return list(adapter.tokenizer(text, add_special_tokens=False)["input_ids"])

    pieces: list[list[tuple[list[int], int]]] = []  # per row: (tokens, 1 model-written / 2 tool turn)
    pixels: list[torch.Tensor | None] = []
    grids: list[torch.Tensor | None] = []
    for i, (row, geometry) in enumerate(zip(rows, prompt.geometries, strict=True)):
        chain = format_zoom_chain(row, geometry, zoom)
        if chain is None:
            pieces.append([(encode(format_gold_chain(row, geometry)) + [end], 1)])
            pixels.append(None)
            grids.append(None)
            continue
        first = encode(chain.first)
        turn = session.respond(i, first)
        if not turn.call.ok:
            raise ValueError(f"row {row.source or row.question!r}: its gold zoom {chain.box} got no crop "
                             f"({turn.call.error})")
        pieces.append([(first, 1), (turn.ids, 2), (encode(chain.answer) + [end], 1)])
        pixels.append(turn.pixel_values)
        grids.append(turn.image_grid_thw)
    length = max(sum(len(t) for t, _ in row_pieces) for row_pieces in pieces)
    ids = torch.full((len(rows), length), adapter.pad_token_id, dtype=torch.long)
    kind = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row_pieces in enumerate(pieces):
        at = 0
        for tokens, k in row_pieces:
            ids[i, at:at + len(tokens)] = torch.tensor(tokens)
            kind[i, at:at + len(tokens)] = k
            at += len(tokens)
    mask = (kind == 1).long()
    return prompt, ids, mask, ToolTurnInputs((kind == 2).long(), pixels, grids)
