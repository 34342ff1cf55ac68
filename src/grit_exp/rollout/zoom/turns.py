"""Tool turns during a rollout: what the toolkit writes into a completion when the model calls zoom.

`ZoomSession` is the decode loop's tool (`rollout/decode.py`, argument `tool`): it says when a row's newest
token closes a call (`rule`: the close tag matched on token ids, as stop strings are), reads the call from
the model's turn (`trigger.py`), crops the original image (`crop.py`) and returns the tool turn: the
family's turn template (Qwen2.5-VL: a user turn holding `<|vision_start|><|image_pad|><|vision_end|>`;
InternVL: `<IMG_CONTEXT>`, which its processor expands to `<img>...</img>`) processed by the family's own
processor, so the image tokens, pixel values and (Qwen) grid are exactly what a fresh prompt would get. A
call that cannot be served (malformed, outside the image, past `max_turns`) gets a text-only turn whose text
says why. Each call is recorded as a `ZoomCall`. Left out: where the turn goes in the KV cache (decode.py)
and how completions are assembled into a `Rollout` (`rollout/hf.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from grit_exp.data.schema import GritRow
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.models.zoom_logprobs import ToolTurnInputs
from grit_exp.rollout.stop_strings import StopStringsByTokenIds
from grit_exp.rollout.zoom.calls import ZoomCall
from grit_exp.rollout.zoom.crop import crop_box, crop_image
from grit_exp.rollout.zoom.trigger import find_trigger

# The turn that closes the model's turn and opens the next one, as each family's chat template writes a
# user turn with an image (rendered from the tiny models' templates, which are the real ones).
TURN_TEMPLATES = {
    "qwen2_5_vl": "<|im_end|>\n<|im_start|>user\n{image}{text}<|im_end|>\n<|im_start|>assistant\n",
    "internvl": "<|im_end|>\n<|im_start|>user\n{image}{text}<|im_end|>\n<|im_start|>assistant\n",
}
IMAGE_PLACEHOLDERS = {
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "internvl": "<IMG_CONTEXT>\n",
}


@dataclass
class ToolTurn:
    ids: list[int]  # the tool turn's tokens (template, image tokens, text)
    pixel_values: torch.Tensor | None  # the crop's rows of pixel_values (None: a text-only turn)
    image_grid_thw: torch.Tensor | None  # Qwen: [1, 3]; None otherwise
    call: ZoomCall


@dataclass
class Insertion:
    """One tool turn as the decode loop placed it: completion, first column (in new-token columns), its tokens."""

    completion: int
    column: int  # the decode loop's column of the turn's first token (`ZoomSession.first_column`: the first new one)
    turn: ToolTurn


@dataclass
class ZoomSession:
    """The tool of one rollout call: completion i continues prompt i // repeats (see the module docstring)."""

    adapter: Any  # ModelAdapter
    zoom: Any  # ZoomConfig
    rows: list[GritRow]  # one per distinct prompt
    geometries: list[ImageGeometry]  # one per distinct prompt
    repeats: int
    prompt_grids: torch.Tensor | None = None  # Qwen: the distinct prompts' image_grid_thw
    calls: dict[int, list[ZoomCall]] = field(default_factory=dict)
    insertions: list[Insertion] = field(default_factory=list)
    column_mask: torch.Tensor | None = None  # after decoding: 0 for the masked columns (holes) of each row
    first_column: int = 0
    _images: dict[int, Image.Image] = field(default_factory=dict)
    _rule: StopStringsByTokenIds | None = None

    @property
    def rule(self) -> StopStringsByTokenIds:
        if self._rule is None:
            self._rule = StopStringsByTokenIds(self.adapter.tokenizer, [self.zoom.close_tag])
        return self._rule

    @property
    def room(self) -> int:
        """Columns to reserve for tool turns: `max_turns` turns with a crop at its pixel bound (more grows)."""
        tiles = int(getattr(self.adapter.cfg, "max_tiles", 1) or 1) + 1  # InternVL: tiles + thumbnail
        per_image = max(self.zoom.crop_max_pixels // (28 * 28),
                        tiles * int(getattr(self.adapter.processor, "image_seq_length", 0) or 0))
        return self.zoom.max_turns * (per_image + 64)

    def template(self) -> str:
        return self.zoom.turn_template or TURN_TEMPLATES[self.adapter.family]

    def _image(self, prompt: int) -> Image.Image:
        if prompt not in self._images:
            with Image.open(self.rows[prompt].image) as im:
                self._images[prompt] = im.convert("RGB")
        return self._images[prompt]

    def respond(self, completion: int, turn_ids: list[int]) -> ToolTurn:
        """The tool turn for completion `completion`, whose model turn (since its last tool turn) is `turn_ids`."""
        prompt = completion // self.repeats
        calls = self.calls.setdefault(completion, [])
        text = self.adapter.tokenizer.decode(turn_ids, skip_special_tokens=False)
        trigger = find_trigger(text, self.zoom.open_tag, self.zoom.close_tag, str(self.zoom.trigger_format))
        number = len(calls) + 1
        box, error, region = trigger.box, trigger.error, None
        if error is None and sum(c.ok for c in calls) >= self.zoom.max_turns:
            error = f"no more zooms: at most {self.zoom.max_turns} per answer"
        if error is None:
            region, error = crop_box(box, self.geometries[prompt], self.zoom.padding, self.zoom.min_size)
        call = ZoomCall(number, trigger.text, box, region if error is None else None, error)
        calls.append(call)
        if error is not None:
            turn_text = self.template().replace("{image}", "").replace("{text}", f"Zoom failed: {error}.")
            ids = self.adapter.tokenizer(turn_text, add_special_tokens=False)["input_ids"]
            return ToolTurn(list(ids), None, None, call)
        crop = crop_image(self._image(prompt), region, self.zoom.crop_min_pixels, self.zoom.crop_max_pixels)
        turn_text = self.template().replace("{image}", IMAGE_PLACEHOLDERS[self.adapter.family]).replace(
            "{text}", self.zoom.reply_text)
        out = self.adapter.processor(text=[turn_text], images=[crop], return_tensors="pt")
        grid = out.get("image_grid_thw")
        return ToolTurn(out["input_ids"][0].tolist(), out["pixel_values"], grid, call)

    def image_grids(self, completion: int) -> torch.Tensor | None:
        """Qwen: the grids of completion's images so far (prompt image, then its crops in order)."""
        if self.prompt_grids is None:
            return None
        grids = [self.prompt_grids[completion // self.repeats][None]]
        grids += [i.turn.image_grid_thw.to(self.prompt_grids.device) for i in self.insertions
                  if i.completion == completion and i.turn.image_grid_thw is not None]
        return torch.cat(grids, dim=0)

    def completions(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, ToolTurnInputs]:
        """(completion ids, completion mask, tool turns) from the decode loop's `ids` (new-token columns, with
        holes): the holes removed, each completion's model-written tokens and tool turns contiguous, through
        its first model-written end of turn (tool turns hold end-of-turn tokens too), trimmed to the longest."""
        total = ids.shape[0]
        is_tool = torch.zeros_like(ids, dtype=torch.bool)
        for insertion in self.insertions:
            start = insertion.column - self.first_column
            is_tool[insertion.completion, start:start + len(insertion.turn.ids)] = True
        keep = self.column_mask.bool()
        pad = self.adapter.pad_token_id if self.adapter.pad_token_id is not None else self.adapter.eos_token_ids[0]
        width = int(keep.sum(1).max()) if total else 0
        out = torch.full((total, width), pad, dtype=torch.long, device=ids.device)
        tool = torch.zeros(total, width, dtype=torch.bool, device=ids.device)
        for c in range(total):
            row, row_tool = ids[c][keep[c]], is_tool[c][keep[c]]
            out[c, :len(row)], tool[c, :len(row)] = row, row_tool
        eos = torch.isin(out, torch.tensor(self.adapter.eos_token_ids, device=out.device)) & ~tool
        span = (eos.long().cumsum(1) - eos.long()) == 0  # through the first model-written end of turn
        if self.adapter.pad_token_id is not None and self.adapter.pad_token_id not in self.adapter.eos_token_ids:
            span &= out != self.adapter.pad_token_id  # rows finished by a stop string
        from grit_exp.rollout.types import sequence_length

        longest = sequence_length(span)
        out, tool, span = out[:, :longest], tool[:, :longest], span[:, :longest]
        mask = (span & ~tool).long()
        pixels, grids = [], []
        for c in range(total):
            turns = [i.turn for i in self.insertions if i.completion == c and i.turn.pixel_values is not None]
            pixels.append(torch.cat([t.pixel_values for t in turns]).to(ids.device) if turns else None)
            grids.append(torch.cat([t.image_grid_thw for t in turns]).to(ids.device)
                         if turns and turns[0].image_grid_thw is not None else None)
        return out, mask, ToolTurnInputs((span & tool).long(), pixels, grids)
