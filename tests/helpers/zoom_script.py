"""Scripted zoom calls for tests: a choice (decode loop) and a logits processor (HF `generate`) that force
given tokens at given model-written indices of each completion and otherwise keep the model's choice (an end of
turn replaced by a filler token, so completions run long enough to call). Both still draw from the sampler at
every step, so seeded runs stay aligned. Also `scripted_rollout`: a zoom rollout of the tiny model built that way.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from grit_exp.rollout.decode import decode, greedy_tokens
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler, completion_seed
from grit_exp.rollout.types import Rollout
from grit_exp.rollout.zoom.turns import ZoomSession


def script(adapter) -> dict[int, dict[int, int]]:
    """Per completion: {model-written token index: forced token}. Completion 0 zooms twice then calls a third
    time (past max_turns); 1 writes a malformed call; 2 zooms outside the image; 3 ends early; 4 zooms once."""
    family = adapter.family
    inside = "[10, 10, 60, 50]" if family == "qwen2_5_vl" else "[100, 100, 600, 500]"
    other = "[30, 40, 90, 100]" if family == "qwen2_5_vl" else "[300, 400, 900, 1000]"
    outside = "[2000, 2000, 2100, 2100]"

    def tokens(text: str) -> list[int]:
        return adapter.tokenizer(text, add_special_tokens=False)["input_ids"]

    def place(plan: list[tuple[int, str]]) -> dict[int, int]:
        """(free tokens before it, text) in order."""
        out, start = {}, 0
        for gap, text in plan:
            ids = tokens(text) if text != "<end>" else [adapter.eos_token_ids[0]]
            start += gap
            out.update({start + i: t for i, t in enumerate(ids)})
            start += len(ids)
        return out

    call = "<zoom>{}</zoom>"
    return {
        0: place([(2, call.format(inside)), (1, call.format(other)), (3, call.format(inside))]),
        1: place([(3, "<zoom>[1, 2, 3]</zoom>")]),
        2: place([(1, call.format(outside))]),
        3: place([(5, "<end>")]),
        4: place([(6, call.format(other))]),
    }


def forced(script: dict[int, int], n: int, chosen: int, eos: list[int], filler: int) -> int:
    """The script's token at model-written index n; else the choice, an end of turn replaced by `filler`."""
    if n in script:
        return script[n]
    return filler if chosen in eos else chosen


class Scripted:
    """The decode loop's choice: the inner choice (it draws for every row), then the script (`_forced`)."""

    def __init__(self, inner, script, eos, filler):
        self.inner, self.script, self.written, self.eos, self.filler = inner, script, {}, eos, filler

    def __call__(self, scores, rows):
        chosen = self.inner(scores, rows).clone()
        for i, c in enumerate(rows):
            n = self.written.get(c, 0)
            chosen[i] = forced(self.script.get(c, {}), n, int(chosen[i]), self.eos, self.filler)
            self.written[c] = n + 1
        return chosen


class ScriptedProcessor(LogitsProcessor):
    """The same for HF `generate` on one completion (last in the list: only the chosen token stays finite)."""

    def __init__(self, sampler, script: dict[int, int], eos, filler):
        self.sampler, self.script, self.written, self.eos, self.filler = sampler, script, 0, eos, filler

    def __call__(self, input_ids, scores):
        if self.sampler is not None:
            scores = self.sampler(input_ids, scores)
        token = forced(self.script, self.written, int(scores.argmax(-1)), self.eos, self.filler)
        self.written += 1
        return torch.full_like(scores, float("-inf")).index_fill_(-1, torch.tensor([token]), 0.0)


def filler(adapter) -> int:
    return adapter.tokenizer("a", add_special_tokens=False)["input_ids"][0]


def seeds(prompts: int = 3, repeats: int = 2) -> list[int]:
    return [completion_seed(0, 1, p, g) for p in range(prompts) for g in range(repeats)]


def scripted_rollout(adapter, model, zoom_cfg, rows, texts, repeats: int, max_new: int, greedy: bool = True,
                     plan=None) -> tuple[ZoomSession, Rollout]:
    """A zoom rollout of `rows` (G = `repeats`) whose completions follow `plan` (default `script`)."""
    prompts = adapter.build_prompt_batch(rows, texts)
    inner = greedy_tokens
    if not greedy:
        inner = PerRowSeededSampler(seeds(len(rows), repeats), 0.9, 50, 1.0, torch.device("cpu")).draw
    tool = ZoomSession(adapter, zoom_cfg, rows, prompts.geometries, repeats, prompts.inputs.get("image_grid_thw"))
    choice = Scripted(inner, plan if plan is not None else script(adapter), adapter.eos_token_ids, filler(adapter))
    ids = decode(model, model, prompts.inputs, repeats, max_new, choice, adapter.eos_token_ids, adapter.pad_token_id,
                 adapter.suppressed_token_ids, tool=tool)
    ids, mask, turns = tool.completions(ids)
    calls = [tool.calls.get(c, []) for c in range(len(rows) * repeats)]
    return tool, Rollout(prompts.repeat_interleave(repeats), [r for r in rows for _ in range(repeats)], ids, mask,
                         adapter.decode_completions(ids, mask), zoom_calls=calls, tool_turns=turns)


def zoom_test_model(builder: str, max_new: int, *, zoom: bool = True):
    """(cfg, adapter, model, rows): the tiny model of `builder` with larger random weights (normal, std 0.15,
    seed 0: long, varied completions), the mixed synthetic rows, and zoom on (2 turns, no stop strings) or off."""
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.models import build_adapter
    from tests.helpers.configs import compose_config

    zoom_overrides = ["rollout.stop_strings=[]", "rollout.zoom.enabled=true", "rollout.zoom.max_turns=2"] if zoom else []
    cfg = compose_config("train", f"model={builder}", "dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2",
                         f"rollout.max_new_tokens={max_new}", *zoom_overrides,
                         "dataset.synthetic.kind_weights=[0.6,0.2,0.2]", "dataset.synthetic.count_targets=9")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu").eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() >= 2:
                param.normal_(0.0, 0.15, generator=generator)
    return cfg, adapter, model, rows
