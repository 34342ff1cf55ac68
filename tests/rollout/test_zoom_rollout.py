"""Zoom turns in the HF decode loop are exact: each completion's tokens (model-written and tool turns) equal
those of a reference that re-runs HF `generate` from scratch on the whole conversation at every turn (its
images so far, batch of one, no padding), greedy and seeded, for both families. The model is the tiny one
with larger random weights (its text varies); a scripted choice makes some completions write a zoom call
(well-formed, malformed, outside the image, past max_turns) or end at given steps, the same way in both
(the sampler still draws at every step, so seeded runs stay aligned). Also: the rollout's masks (tool turns
attended, never trained), texts (model-written turns only) and calls."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList, StoppingCriteriaList

from grit_exp.data.prompts import build_user_text
from grit_exp.rollout.decode import decode, greedy_tokens
from grit_exp.rollout.hf import HFRollout, only_these_settings
from grit_exp.rollout.seeded_sampling import PerRowSeededSampler
from grit_exp.rollout.stop_strings import StopStringsByTokenIds
from grit_exp.rollout.zoom.turns import ZoomSession
from tests.helpers.zoom_script import Scripted, ScriptedProcessor, filler, script, seeds, zoom_test_model

G, MAX_NEW = 2, 104


@pytest.fixture(scope="module", params=["tiny_qwen2_5_vl", "tiny_internvl"])
def setup(request, grit_cache, tiny_model_paths):
    cfg, adapter, model, rows = zoom_test_model(request.param, MAX_NEW)
    by_length = sorted(rows, key=lambda r: len(r.question))
    chosen = [by_length[0], by_length[-1], by_length[len(rows) // 2]]
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in chosen]
    return cfg, adapter, model, chosen, texts


def _loop(setup, greedy):
    cfg, adapter, model, rows, texts = setup
    prompts = adapter.build_prompt_batch(rows, texts)
    inner = greedy_tokens if greedy else PerRowSeededSampler(seeds(3, G), 0.9, 50, 1.0, torch.device("cpu")).draw
    tool = ZoomSession(adapter, cfg.rollout.zoom, rows, prompts.geometries, G, prompts.inputs.get("image_grid_thw"))
    choice = Scripted(inner, script(adapter), adapter.eos_token_ids, filler(adapter))
    ids = decode(model, model, prompts.inputs, G, MAX_NEW, choice, adapter.eos_token_ids, adapter.pad_token_id,
                 adapter.suppressed_token_ids, tool=tool)
    return tool, tool.completions(ids)


def _reference(setup, greedy, completion: int):
    """HF `generate` re-run from scratch on the whole conversation at every turn: (ids, is_tool) of the completion."""
    cfg, adapter, model, rows, texts = setup
    prompt_index = completion // G
    prompt = adapter.build_prompt_batch([rows[prompt_index]], [texts[prompt_index]])
    session = ZoomSession(adapter, cfg.rollout.zoom, [rows[prompt_index]], prompt.geometries, 1,
                          prompt.inputs.get("image_grid_thw"))
    config = HFRollout(adapter, cfg.rollout).generation_config(greedy=True)
    sampler = None if greedy else PerRowSeededSampler([seeds(3, G)[completion]], 0.9, 50, 1.0, torch.device("cpu"))
    processors = LogitsProcessorList([ScriptedProcessor(sampler, script(adapter).get(completion, {}), adapter.eos_token_ids,
                                                     filler(adapter))])
    close = StopStringsByTokenIds(adapter.tokenizer, [cfg.rollout.zoom.close_tag])
    inputs = dict(prompt.inputs)
    ids, written, new, is_tool, pixels, grids = inputs["input_ids"], 0, [], [], [inputs["pixel_values"]], []
    if "image_grid_thw" in inputs:
        grids.append(inputs["image_grid_thw"])
    while written < MAX_NEW:
        config.max_new_tokens = MAX_NEW - written
        extra = {"pixel_values": torch.cat(pixels)}
        if grids:
            extra["image_grid_thw"] = torch.cat(grids)
            extra["mm_token_type_ids"] = (ids == adapter.processor.image_token_id).int()
        with only_these_settings(model, config), torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **extra, generation_config=config,
                                 logits_processor=processors, stopping_criteria=StoppingCriteriaList([close]))
        turn = out[0, ids.shape[1]:].tolist()
        ids, written = out, written + len(turn)
        new += turn
        is_tool += [False] * len(turn)
        if turn[-1] in adapter.eos_token_ids or written >= MAX_NEW or not bool(close(ids, None)[0]):
            break
        tool_turn = session.respond(0, turn)
        ids = torch.cat([ids, torch.tensor([tool_turn.ids])], dim=1)
        new += tool_turn.ids
        is_tool += [True] * len(tool_turn.ids)
        if tool_turn.pixel_values is not None:
            pixels.append(tool_turn.pixel_values)
            if tool_turn.image_grid_thw is not None:
                grids.append(tool_turn.image_grid_thw)
    return new, is_tool, session.calls.get(0, [])


@pytest.mark.slow
@pytest.mark.parametrize("greedy", [True, False], ids=["greedy", "seeded"])
def test_zoom_turns_equal_generate_rerun_from_scratch(setup, greedy):
    _, adapter, _, rows, _ = setup
    tool, (ids, mask, turns) = _loop(setup, greedy)
    assert ids.shape[0] == 3 * G
    for c in range(3 * G):
        expected, expected_tool, expected_calls = _reference(setup, greedy, c)
        span = (mask[c] + turns.tool_mask[c]).bool()
        got = ids[c][span].tolist()
        assert got == expected, c
        assert turns.tool_mask[c][span].bool().tolist() == expected_tool, c
        assert tool.calls.get(c, []) == expected_calls, c
    calls = tool.calls
    assert [call.ok for call in calls[0]] == [True, True, False] and "at most 2" in calls[0][2].error
    assert not calls[1][0].ok and calls[1][0].box is None
    assert not calls[2][0].ok and "outside" in calls[2][0].error
    assert 3 not in calls and len(calls[4]) == 1 and calls[4][0].ok
    assert turns.pixel_values[0] is not None and turns.pixel_values[1] is None
