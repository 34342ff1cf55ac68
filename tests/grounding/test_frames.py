"""Coordinate frames: Qwen's smart resize against transformers', conversions, round trips, paper mode."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from grit_exp.grounding.frames import ImageGeometry, qwen_smart_resize

sizes = st.integers(min_value=1, max_value=5000)


@pytest.fixture(scope="module")
def hf_smart_resize():
    # transformers' image_processing_qwen2_vl imports torchvision (unusable here); its PIL twin holds the
    # same function ("Copied from transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize").
    # Imported lazily: it pulls in torch (~7 s alone, shared with the rest of the suite).
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    return smart_resize


@given(
    sizes, sizes, st.sampled_from([(3136, 256 * 28 * 28), (56 * 56, 14 * 14 * 4 * 1280), (3136, 3136 * 4)])
)
def test_smart_resize_equals_transformers(hf_smart_resize, height, width, limits):
    min_pixels, max_pixels = limits
    assume(max(height, width) / min(height, width) <= 200)
    assert qwen_smart_resize(height, width, 28, min_pixels, max_pixels) == hf_smart_resize(
        height, width, factor=28, min_pixels=min_pixels, max_pixels=max_pixels
    )


def test_smart_resize_examples_and_errors():
    assert qwen_smart_resize(480, 640) == (364, 504)  # 640x480 COCO image, paper limits
    assert qwen_smart_resize(112, 112) == (112, 112)
    with pytest.raises(ValueError, match="aspect ratio"):
        qwen_smart_resize(1, 300)


def test_qwen_conversion_by_hand():
    g = ImageGeometry.for_qwen_grid(640, 480, (1, 26, 36))  # input 504 x 364
    assert (g.input_width, g.input_height) == (504, 364)
    assert g.model_to_original([252, 182, 504, 364]) == [320.0, 240.0, 640.0, 480.0]
    assert g.original_to_model([320, 240, 640, 480]) == [252.0, 182.0, 504.0, 364.0]
    assert g.model_to_original([-10, 0, 600, 400], clip=True) == [0.0, 0.0, 640.0, 480.0]
    assert g.model_to_original_paper([1, 2, 3, 4]) == [1.0, 2.0, 3.0, 4.0]  # authors: as written
    assert ImageGeometry.for_qwen_pixels(640, 480, 3136, 256 * 28 * 28) == g


def test_internvl_conversion_by_hand():
    g = ImageGeometry.for_internvl(640, 480)
    assert g.model_to_original([500, 500, 1000, 1000]) == [320.0, 240.0, 640.0, 480.0]
    assert g.model_to_original([1, 1, 3, 3]) == [0.64, 0.48, 1.92, 1.44]
    assert g.model_to_original_paper([1, 1, 3, 3]) == [0.0, 0.0, 1.0, 1.0]  # int truncation
    assert g.model_to_original_paper([999, 999, 1000, 1000]) == [639.0, 479.0, 640.0, 480.0]
    assert g.original_to_model([320, 240, 640, 480]) == [500.0, 500.0, 1000.0, 1000.0]
    assert g.model_to_original([1100, 0, 500, 500], clip=True) == [640.0, 0.0, 320.0, 240.0]


coords = st.floats(min_value=-2000, max_value=5000, allow_nan=False)
boxes = st.tuples(coords, coords, coords, coords)


@given(st.integers(1, 4000), st.integers(1, 4000), st.integers(1, 80), st.integers(1, 80), boxes)
def test_qwen_round_trip(width, height, grid_w, grid_h, box):
    g = ImageGeometry.for_qwen_grid(width, height, (1, grid_h, grid_w))
    back = g.original_to_model(g.model_to_original(box))
    assert back == pytest.approx(list(box), rel=1e-12, abs=1e-9)


@given(st.integers(1, 4000), st.integers(1, 4000), boxes)
def test_internvl_round_trip(width, height, box):
    g = ImageGeometry.for_internvl(width, height)
    assert g.model_to_original(g.original_to_model(box)) == pytest.approx(list(box), rel=1e-12, abs=1e-9)


def test_serialisation_round_trip_and_errors():
    g = ImageGeometry.for_qwen_grid(640, 480, (1, 26, 36))
    assert ImageGeometry.from_dict(g.to_dict()) == g
    assert ImageGeometry.from_dict(ImageGeometry.for_internvl(5, 6).to_dict()) == ImageGeometry(
        "internvl", 5, 6
    )
    with pytest.raises(ValueError, match="unknown keys"):
        ImageGeometry.from_dict({**g.to_dict(), "scale": 2})
    with pytest.raises(ValueError, match="family='llava'"):
        ImageGeometry("llava", 5, 5)
    with pytest.raises(ValueError, match="orig_width must be a positive int"):
        ImageGeometry("internvl", 0, 5)
    with pytest.raises(ValueError, match="takes no input_width"):
        ImageGeometry("internvl", 5, 5, 28, 28)
    with pytest.raises(ValueError, match="no input size"):
        ImageGeometry("qwen2_5_vl", 5, 5).model_to_original([0, 0, 1, 1])
    with pytest.raises(ValueError, match="got 3 values"):
        g.model_to_original([1, 2, 3])
