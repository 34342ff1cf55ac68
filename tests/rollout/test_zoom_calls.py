"""Reading zoom calls and the crop policy (rollout/zoom/trigger.py, crop.py), and a tool turn per family
(turns.py): well-formed calls in both spellings, every malformed kind answered with a reason (never an
exception), boxes in each family's own frame mapped to original pixels, padding / minimum size / resize
bounds, and the tool turn holding the family's image tokens for the crop (or only text when refused)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from PIL import Image

from grit_exp.config.rollout import ZoomConfig
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.models import build_adapter
from grit_exp.rollout.zoom.crop import crop_box, crop_image
from grit_exp.rollout.zoom.trigger import find_trigger
from grit_exp.rollout.zoom.turns import ZoomSession
from tests.models.model_helpers import make_rows, model_cfg


@pytest.mark.parametrize("text, box", [
    ("I look <zoom>[10, 20, 30, 40]</zoom>", (10.0, 20.0, 30.0, 40.0)),
    ("<zoom> [1.5,2, 3e1, 40] </zoom>", (1.5, 2.0, 30.0, 40.0)),
    ("<zoom>[0, 0, 1, 1]</zoom> then <zoom>[5, 6, 7, 8]</zoom>", (5.0, 6.0, 7.0, 8.0)),  # the call that ends the turn
])
def test_box_calls(text, box):
    trigger = find_trigger(text, "<zoom>", "</zoom>", "box")
    assert trigger.box == box and trigger.error is None and trigger.text.endswith("</zoom>")


@pytest.mark.parametrize("text, reason", [
    ("<zoom>[1, 2, 3]</zoom>", "one box"),
    ("<zoom>[1, 2, 3, 4] and [5, 6, 7, 8]</zoom>", "one box"),
    ("<zoom>look here [1, 2, 3, 4]</zoom>", "one box"),
    ("<zoom>[30, 2, 10, 4]</zoom>", "x1 < x2"),
    ("<zoom>[1, 2, 3, 4e999]</zoom>", "finite"),
    ("[1, 2, 3, 4]</zoom>", "without <zoom>"),
    ("<zoom>[a, b, c, d]</zoom>", "one box"),
])
def test_malformed_box_calls_get_a_reason(text, reason):
    trigger = find_trigger(text, "<zoom>", "</zoom>", "box")
    assert trigger.box is None and reason in trigger.error


def test_bbox_2d_json_calls():
    deepeyes = '<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 30, 40]}}</tool_call>'
    assert find_trigger(deepeyes, "<tool_call>", "</tool_call>", "bbox_2d_json").box == (10.0, 20.0, 30.0, 40.0)
    for bad, reason in (('<z>{"bbox_2d": [1, 2, 3]}</z>', "four numbers"), ("<z>{bbox_2d: 1}</z>", "not JSON"),
                        ('<z>{"bbox_2d": [1, 2, true, 4]}</z>', "four numbers"), ('<z>{"box": [1,2,3,4]}</z>', "bbox_2d")):
        trigger = find_trigger(bad, "<z>", "</z>", "bbox_2d_json")
        assert trigger.box is None and reason in trigger.error, bad


def test_crop_box_in_each_family_frame():
    qwen = ImageGeometry("qwen2_5_vl", 448, 224, 112, 56)  # the model sees a quarter-size view
    assert crop_box((10, 5, 20, 15), qwen, padding=0, min_size=1) == ((40, 20, 80, 60), None)
    internvl = ImageGeometry.for_internvl(448, 224)
    assert crop_box((250, 500, 500, 1000), internvl, padding=0, min_size=1) == ((112, 112, 224, 224), None)
    # padding, clipped to the image; a box partly outside is clipped; one fully outside is refused
    assert crop_box((0, 0, 10, 10), qwen, padding=8, min_size=1) == ((0, 0, 48, 48), None)
    assert crop_box((100, 50, 200, 100), qwen, padding=0, min_size=1) == ((400, 200, 448, 224), None)
    assert crop_box((200, 200, 300, 300), qwen, 0, 1) == (None, "the box lies outside the image")
    # minimum size: widened around the centre, shifted to stay inside; never more than the image
    assert crop_box((1, 1, 2, 2), qwen, padding=0, min_size=28) == ((0, 0, 28, 28), None)
    assert crop_box((50, 25, 51, 26), qwen, padding=0, min_size=28) == ((188, 88, 216, 116), None)
    assert crop_box((0, 0, 1, 1), qwen, padding=0, min_size=1000) == ((0, 0, 448, 224), None)


def test_crop_image_resize_bounds():
    image = Image.new("RGB", (448, 224))
    assert crop_image(image, (0, 0, 100, 50), 100, 10000).size == (100, 50)  # inside the bounds: native pixels
    small = crop_image(image, (0, 0, 10, 5), 3136, 12544).size
    assert 3136 * 0.95 <= small[0] * small[1] <= 3136 * 1.05 and abs(small[0] - 2 * small[1]) <= 1
    big = crop_image(image, (0, 0, 448, 224), 100, 12544).size
    assert big[0] * big[1] <= 12544 * 1.05 and abs(big[0] - 2 * big[1]) <= 1


@pytest.mark.parametrize("builder", ["tiny_qwen2_5_vl", "tiny_internvl"])
def test_tool_turn_per_family(builder, tiny_model_paths, tmp_path):
    adapter = build_adapter(model_cfg(builder, tiny_model_paths[builder]))
    rows = make_rows(tmp_path, sizes=((448, 224),))
    prompts = adapter.build_prompt_batch(rows, ["How many?"])
    zoom = OmegaConf.structured(ZoomConfig(enabled=True, max_turns=1))
    session = ZoomSession(adapter, zoom, rows, prompts.geometries, 1, prompts.inputs.get("image_grid_thw"))
    tok = adapter.tokenizer

    def ids(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    box = "[10, 10, 60, 50]" if adapter.family == "qwen2_5_vl" else "[100, 100, 600, 500]"
    turn = session.respond(0, ids(f"Look <zoom>{box}</zoom>"))
    assert turn.call.ok and turn.pixel_values is not None
    text = tok.decode(turn.ids)
    assert text.startswith("<|im_end|>\n<|im_start|>user\n") and text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    image_tokens = turn.ids.count(adapter.processor.image_token_id)
    if adapter.family == "qwen2_5_vl":
        assert "<|vision_start|><|image_pad|>" in text and turn.image_grid_thw is not None
        assert image_tokens == int(turn.image_grid_thw.prod()) // 4
    else:
        assert "<img><IMG_CONTEXT>" in text and image_tokens == adapter.processor.image_seq_length * len(turn.pixel_values)
    refused = session.respond(0, ids(f"again <zoom>{box}</zoom>"))  # past max_turns=1
    assert not refused.call.ok and refused.pixel_values is None and refused.call.turn == 2
    assert adapter.processor.image_token_id not in refused.ids and "at most 1" in tok.decode(refused.ids)
    malformed = session.respond(0, ids("<zoom>[1, 2]</zoom>"))
    assert malformed.call.box is None and "Zoom failed" in tok.decode(malformed.ids)


@pytest.mark.parametrize("override, key", [
    ("rollout.zoom.max_turns=0", "rollout.zoom.max_turns=0"),
    ("rollout.zoom.close_tag='<zoom>'", "rollout.zoom.open_tag"),
    ("rollout.zoom.padding=-1", "rollout.zoom.padding=-1"),
    ("rollout.zoom.min_size=0", "rollout.zoom.min_size=0"),
    ("rollout.zoom.crop_min_pixels=20000", "rollout.zoom.crop_min_pixels=20000"),
    ("rollout.zoom.turn_template='<|im_end|>{text}'", "rollout.zoom.turn_template"),
    ("algorithm.dynamic_sampling.enabled=true", "algorithm.dynamic_sampling.enabled"),
])
def test_bad_zoom_settings_name_their_key(override, key):
    from grit_exp.config import validate_train
    from grit_exp.errors import ConfigError
    from tests.helpers.configs import compose_config

    with pytest.raises(ConfigError, match=key.replace("[", r"\[")):
        validate_train(compose_config("train", "rollout.zoom.enabled=true", override))


def test_zoom_settings_compose_and_default_off():
    from grit_exp.config import validate_train
    from tests.helpers.configs import compose_config

    cfg = compose_config("train")
    assert cfg.rollout.zoom.enabled is False and cfg.rollout.zoom.max_turns == 2
    validate_train(compose_config("train", "rollout.zoom.enabled=true", "rollout.zoom.trigger_format=bbox_2d_json",
                                  "rollout.zoom.open_tag='<tool_call>'", "rollout.zoom.close_tag='</tool_call>'"))
    with pytest.raises(Exception, match="trigger_format"):
        compose_config("train", "rollout.zoom.trigger_format=json")
