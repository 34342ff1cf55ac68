"""Grounding tokens (InternVL's <ref>/<box>/<quad>, Qwen's <|object_ref_start|>/<|box_start|>/...) are
part of what a model writes: they can be sampled, survive decoding, and SFT targets containing them
have a finite loss. Only structural tokens (image / video placeholders, <|im_start|>, padding) are
suppressed, for both families."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from model_helpers import make_rows, model_cfg
from omegaconf import OmegaConf

from grit_exp.algorithm.sft import sft_step_loss
from grit_exp.config import PromptConfig, RolloutConfig
from grit_exp.data.schema import GoldChain
from grit_exp.grounding.boxes import parse_boxes
from grit_exp.models import build_adapter
from grit_exp.models.base import GROUNDING_TOKENS
from grit_exp.rollout.hf import HFRollout

GROUNDING = {
    "tiny_qwen2_5_vl": ["<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>"],
    "tiny_internvl": ["<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>"],
}
STRUCTURAL = {
    "tiny_qwen2_5_vl": ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|im_start|>", "<|endoftext|>"],
    "tiny_internvl": ["<IMG_CONTEXT>", "<img>", "</img>", "<video>", "<|image_pad|>", "<|im_start|>", "<|endoftext|>"],
}
CHAINS = {
    "tiny_qwen2_5_vl": "<think> <|object_ref_start|>red square<|object_ref_end|><|box_start|>(10,10),(40,40)<|box_end|> "
                       "</think> <rethink> one </rethink> <answer> 1 </answer>",
    "tiny_internvl": "<think> <ref>red square</ref><box>[[89, 100, 357, 400]]</box> </think> "
                     "<rethink> one </rethink> <answer> 1 </answer>",
}


@pytest.fixture(scope="module", params=list(GROUNDING))
def builder(request):
    return request.param


@pytest.fixture(scope="module")
def adapter(builder, tiny_model_paths):
    return build_adapter(model_cfg(builder, tiny_model_paths[builder]))


@pytest.fixture(scope="module")
def model(adapter):
    return adapter.load_model("cpu").eval()


def ids_of(adapter, tokens):
    return [adapter.tokenizer.convert_tokens_to_ids(t) for t in tokens]


def test_only_structural_tokens_are_suppressed(adapter, builder):
    assert set(GROUNDING[builder]) <= set(GROUNDING_TOKENS)
    suppressed = set(adapter.suppressed_token_ids)
    assert not suppressed & set(ids_of(adapter, GROUNDING[builder]))
    assert set(ids_of(adapter, STRUCTURAL[builder])) <= suppressed
    assert not suppressed & set(adapter.eos_token_ids)


def test_decoding_keeps_grounding_tokens_and_drops_the_rest(adapter, builder):
    ids = adapter.tokenizer(CHAINS[builder], add_special_tokens=False)["input_ids"]
    eos, pad = adapter.eos_token_ids[0], adapter.pad_token_id
    row = torch.tensor([ids + [eos, pad, pad]])
    mask = torch.tensor([[1] * (len(ids) + 1) + [0, 0]])
    assert adapter.decode_completions(row, mask) == [CHAINS[builder]]


def test_sft_loss_is_finite_on_chains_with_grounding_tokens(adapter, model, builder, tmp_path):
    rows = make_rows(tmp_path)
    prompt = adapter.build_prompt_batch(rows, ["\nQuestion: How many?"] * 2)
    target = adapter.tokenizer(CHAINS[builder], add_special_tokens=False)["input_ids"] + adapter.eos_token_ids[:1]
    ids = torch.tensor([target, target])
    logp = adapter.completion_logprobs(model, prompt, ids, torch.ones_like(ids))
    assert torch.isfinite(logp).all()


def test_internvl_gold_chain_sft_loss_is_finite(adapter, model, builder, tmp_path):
    """The InternVL gold chains of the demo and the paper's ICL example use <ref>/<box>."""
    if builder != "tiny_internvl":
        pytest.skip("Qwen's gold chains write JSON boxes")
    gold = GoldChain(boxes=[[10, 10, 40, 40]], labels=["red square"], rethink="I see 1 red square.", answer="1")
    rows = [dataclasses.replace(r, gold=gold) for r in make_rows(tmp_path)]
    prompt_cfg = OmegaConf.merge(OmegaConf.structured(PromptConfig), {"name": "grit"})
    loss = sft_step_loss(adapter, model, rows, prompt_cfg)
    assert torch.isfinite(loss)


def test_generation_can_write_grounding_tokens(adapter, model, builder, tmp_path):
    """Push the first sampled tokens towards a grounding span: it must come out of generate and decoding."""
    opening, closing = ids_of(adapter, GROUNDING[builder][2:4])  # <|box_start|> <|box_end|> / <box> </box>
    digit = adapter.tokenizer.convert_tokens_to_ids("7")
    forced = [opening, digit, closing, adapter.eos_token_ids[0]]
    calls = []

    def push(module, args, output):
        step = min(len(calls), len(forced) - 1)
        calls.append(1)
        output[..., forced[step]] += 1e4
        return output

    handle = model.lm_head.register_forward_hook(push)
    try:
        rollout_cfg = OmegaConf.merge(OmegaConf.structured(RolloutConfig), {"max_new_tokens": 8})
        result = HFRollout(adapter, rollout_cfg).generate(model, make_rows(tmp_path)[:1], ["\nQuestion: Where?"], greedy=True)
    finally:
        handle.remove()
    assert result.completion_ids[0].tolist() == forced
    expected = "".join(GROUNDING[builder][2:3] + ["7"] + GROUNDING[builder][3:4])
    assert result.texts == [expected]


def test_internvl_boxes_parse_from_decoded_text(adapter, builder):
    if builder != "tiny_internvl":
        pytest.skip("InternVL syntax")
    ids = adapter.tokenizer(CHAINS[builder], add_special_tokens=False)["input_ids"]
    text = adapter.decode_completions(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0]
    boxes = parse_boxes(text)
    assert [b.box for b in boxes] == [(89.0, 100.0, 357.0, 400.0)] and boxes[0].label == "red square"
