"""The zoom task of the CPU demo (issue #20): at the tiny model's 112 px view the two answers of one scene
give (nearly) the same model input, while a native-resolution crop of the target tells them apart; the
set is seeded, cached, and read by the ordinary reader with its gold boxes."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from grit_exp.config.dataset import SyntheticDataConfig
from grit_exp.data.reader import DataFile, load_rows
from grit_exp.data.synthetic import ensure_synthetic
from grit_exp.data.synthetic_scenes import COLORS
from grit_exp.data.synthetic_zoom import ZoomTaskParams, make_zoom_example
from grit_exp.models.tiny import TINY_IMAGE_SIZE

PARAMS = ZoomTaskParams(num_train=6, num_val=4)


def tiny_view(image) -> np.ndarray:
    """What the tiny Qwen2.5-VL sees: its own processor's pixel values (max_pixels 112 x 112)."""
    processor = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=TINY_IMAGE_SIZE * TINY_IMAGE_SIZE)
    out = processor(images=[image], return_tensors="np")
    return out["pixel_values"], out["image_grid_thw"]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_the_answer_is_invisible_at_112_px_and_plain_in_a_native_crop(index):
    row_h, horizontal = make_zoom_example(PARAMS, "val", index, stripes="horizontal")
    row_v, vertical = make_zoom_example(PARAMS, "val", index, stripes="vertical")
    assert row_h["bboxs"] == row_v["bboxs"] and (row_h["answer"], row_v["answer"]) == ("horizontal", "vertical")
    view_h, grid = tiny_view(horizontal)
    view_v, _ = tiny_view(vertical)
    assert grid.tolist() == [[1, 8, 8]]  # 448 px brought to 112 px: 16 image tokens
    _, other_scene = make_zoom_example(PARAMS, "val", index + 10, stripes="horizontal")
    between_scenes = np.abs(view_h - tiny_view(other_scene)[0]).max()
    between_answers = np.abs(view_h - view_v).max()
    assert between_answers < 0.15 < 1.0 < between_scenes  # the class leaves < 2 % of the value range

    x1, y1, x2, y2 = row_h["bboxs"][0]
    crop_h = tiny_view(horizontal.crop((x1 - 8, y1 - 8, x2 + 8, y2 + 8)))[0]
    crop_v = tiny_view(vertical.crop((x1 - 8, y1 - 8, x2 + 8, y2 + 8)))[0]
    assert np.abs(crop_h - crop_v).max() > 3.0  # native pixels: full contrast between the classes

    # and the pixels themselves: rows vs columns of red in the crop, not in the 112 px view
    native = np.asarray(horizontal.crop((x1, y1, x2, y2)), dtype=float)[:, :, 0]
    assert native[1].min() == COLORS["red"][0] and native[0].min() == 255  # row 1 red, row 0 white
    small = np.asarray(horizontal.resize((112, 112), 3), dtype=float) - np.asarray(vertical.resize((112, 112), 3), dtype=float)
    assert np.abs(small).max() <= 8  # 8 of 255 levels


def test_set_is_seeded_cached_and_read_with_gold_boxes(tmp_path):
    cfg = OmegaConf.create({"task": "zoom", "out_dir": str(tmp_path), "num_train": 6, "num_val": 4,
                            "image_size": 448, "seed": 7, "max_distractors": 6})
    paths = ensure_synthetic(cfg)
    assert paths.root.name.startswith("zoom-") and ensure_synthetic(cfg) == paths
    first = paths.train_jsonl.read_bytes()
    rows = load_rows([DataFile(str(paths.train_jsonl), str(paths.image_root), "t")], on_error="raise", num_samples=None,
                     seed=0, default_split="train")
    assert len(rows) == 6 and {r.dataset for r in rows} == {"synth_zoom"}
    assert all(r.width == 448 and len(r.bboxs) == 1 and r.gold.boxes == r.bboxs for r in rows)
    assert {r.answer for r in rows} <= {"horizontal", "vertical"}
    again = ensure_synthetic(OmegaConf.merge(cfg, {"out_dir": str(tmp_path / "b")}))
    assert again.train_jsonl.read_bytes() == first  # same parameters, same bytes
    with pytest.raises(ValidationError, match="zoomed"):  # the schema's enum refuses other tasks at compose time
        OmegaConf.merge(OmegaConf.structured(SyntheticDataConfig), {"task": "zoomed"})
