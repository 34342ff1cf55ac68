"""Each family's adapter end to end on its offline tiny model: real PNGs in, generation, log-probs."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from grit_exp.config import ModelConfig
from grit_exp.data.schema import GritRow
from grit_exp.models import build_adapter

TINY = {
    "tiny_qwen2_5_vl": dict(family="qwen2_5_vl", min_pixels=3136, max_pixels=12544),
    "tiny_internvl": dict(family="internvl", tile_size=112, max_tiles=1, use_thumbnail=False),
}


def model_cfg(builder: str, path) -> ModelConfig:
    cfg = OmegaConf.structured(ModelConfig)
    return OmegaConf.merge(cfg, dict(name=builder, path=str(path), tiny_builder=builder, **TINY[builder]))


def make_rows(tmp_path, sizes=((112, 112), (150, 100))) -> list[GritRow]:
    rows = []
    for i, (w, h) in enumerate(sizes):
        path = tmp_path / f"img{i}.png"
        im = Image.new("RGB", (w, h), (240, 240, 240))
        im.paste((200, 20, 20), (10, 10, 40, 40))
        im.save(path)
        rows.append(GritRow(question="How many red squares are there?", answer="1", image=str(path),
                            width=w, height=h, bboxs=[[10, 10, 40, 40]], dataset="synth_count"))
    return rows


@pytest.fixture(scope="module", params=list(TINY))
def adapter(request, tiny_model_paths):
    return build_adapter(model_cfg(request.param, tiny_model_paths[request.param]))


@pytest.fixture(scope="module")
def model(adapter):
    m = adapter.load_model("cpu")
    m.eval()
    return m


def test_prompt_batch_is_left_padded_with_one_image_each(adapter, tmp_path):
    rows = make_rows(tmp_path)
    batch = adapter.build_prompt_batch(rows, ["\nQuestion: a?", "\nQuestion: a much longer question here?"])
    ids, mask = batch.inputs["input_ids"], batch.inputs["attention_mask"]
    assert ids.shape == mask.shape and len(batch) == 2
    assert mask[:, -1].all(), "left padding: every prompt ends at the last column"
    assert not mask[0, 0], "the shorter prompt is padded on the left"
    assert len(batch.image_slices) == 2 and batch.image_slices[-1][1] == batch.inputs["pixel_values"].shape[0]
    assert [g.family for g in batch.geometries] == [adapter.family] * 2


def test_generation_and_logprobs_agree(adapter, model, tmp_path):
    rows = make_rows(tmp_path)
    batch = adapter.build_prompt_batch(rows, ["\nQuestion: How many?", "\nQuestion: Where is it?"]).repeat_interleave(2)
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(**batch.inputs, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                             max_new_tokens=12, output_scores=True, return_dict_in_generate=True,
                             **adapter.generation_kwargs())
    completion = out.sequences[:, batch.prompt_length:]
    assert completion.shape[1] >= 1
    assert not torch.isin(completion, torch.tensor(adapter.suppressed_token_ids)).any()
    # mask: real tokens up to and including the first EOS; padding after it
    eos = torch.isin(completion, torch.tensor(adapter.eos_token_ids))
    after_eos = (eos.cumsum(1) - eos.long()) > 0
    mask = (~after_eos).long()
    gen_logprobs = torch.stack([torch.log_softmax(s.float(), -1) for s in out.scores], 1)
    gen_logprobs = gen_logprobs.gather(-1, completion.unsqueeze(-1)).squeeze(-1).masked_fill(mask == 0, 0)
    with torch.no_grad():
        ours = adapter.completion_logprobs(model, batch, completion, mask)
    assert ours.shape == completion.shape
    assert torch.isfinite(ours).all()
    assert torch.allclose(ours, gen_logprobs, atol=1e-4), (ours - gen_logprobs).abs().max()


def test_qwen_forward_gets_mm_token_type_ids(adapter, model, tmp_path):
    """Without mm_token_type_ids Qwen silently falls back to 1-D positions and log-probs drift."""
    if adapter.family != "qwen2_5_vl":
        pytest.skip("InternVL uses 1-D RoPE")
    batch = adapter.build_prompt_batch(make_rows(tmp_path)[:1], ["\nQuestion: How many?"])
    completion = torch.tensor([[adapter.tokenizer.convert_tokens_to_ids("<|im_end|>")] * 3])
    inputs = adapter.forward_inputs(batch, completion, torch.ones_like(completion))
    assert inputs["mm_token_type_ids"].shape == inputs["input_ids"].shape
    assert inputs["mm_token_type_ids"][0, -3:].eq(0).all()
    with torch.no_grad():
        with_types = model(**inputs).logits
        without = model(**{k: v for k, v in inputs.items() if k != "mm_token_type_ids"}).logits
    assert not torch.allclose(with_types, without, atol=1e-6), "3-D positions must change the outputs"


def test_box_frames_round_trip_through_adapter_geometry(adapter, tmp_path):
    rows = make_rows(tmp_path, sizes=((150, 100),))
    geometry = adapter.build_prompt_batch(rows, ["q"]).geometries[0]
    box = [12.0, 7.0, 140.0, 93.0]
    model_box = geometry.original_to_model(box)
    assert geometry.model_to_original(model_box) == pytest.approx(box, abs=1e-9)
    if adapter.family == "qwen2_5_vl":
        grid = adapter.build_prompt_batch(rows, ["q"]).inputs["image_grid_thw"][0]
        assert (geometry.input_width, geometry.input_height) == (int(grid[2]) * 14, int(grid[1]) * 14)
    else:
        assert model_box == pytest.approx([b / s * 1000 for b, s in zip(box, [150, 100, 150, 100], strict=True)])


def test_tiny_model_reloads_identically(adapter, model, tiny_model_paths):
    again = adapter.load_model("cpu")
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_freezing_groups(adapter, tiny_model_paths):
    cfg = OmegaConf.merge(adapter.cfg, {"freeze_vision": True, "freeze_projector": True})
    frozen = type(adapter)(cfg, adapter.path).load_model("cpu")
    groups = adapter.parameter_groups(frozen)
    assert groups["vision"] and groups["projector"] and groups["llm"]
    assert not any(p.requires_grad for p in groups["vision"] + groups["projector"])
    assert all(p.requires_grad for p in groups["llm"])
    grouped = {id(p) for ps in groups.values() for p in ps}
    assert grouped == {id(p) for p in frozen.parameters()}, "every parameter belongs to exactly one group"
