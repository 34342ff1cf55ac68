"""IoU, exact union areas, union IoU, the authors' GIoU and the OVD set precision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grit_exp.grounding.metrics import (
    OVD_IOU_THRESHOLDS,
    box_area,
    grounding_iou,
    iou,
    ovd_precision,
    union_area,
    union_iou,
)

small = st.integers(0, 12)


@st.composite
def int_box(draw, allow_degenerate=True):
    x1, y1 = draw(small), draw(small)
    if allow_degenerate:
        return [x1, y1, draw(small), draw(small)]
    return [x1, y1, x1 + draw(st.integers(1, 6)), y1 + draw(st.integers(1, 6))]


def raster(boxes):
    """The unit cells covered by integer boxes: an independent, obviously-right union."""
    return {(x, y) for x1, y1, x2, y2 in boxes for x in range(x1, x2) for y in range(y1, y2)}


def test_hand_worked():
    assert iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0
    assert iou([0, 0, 2, 2], [0, 0, 2, 2]) == 1.0
    assert union_area([[0, 0, 2, 2], [1, 1, 3, 3]]) == 7.0
    assert union_area([[0, 0, 4, 4], [1, 1, 2, 2]]) == 16.0  # nested
    assert union_area([]) == 0.0
    # pred union = 7, gt = [0, 0, 3, 3] area 9 contains it: IoU 7 / 9
    assert union_iou([[0, 0, 2, 2], [1, 1, 3, 3]], [[0, 0, 3, 3]]) == pytest.approx(7 / 9)
    # two adjacent GT boxes (union area 8); the prediction (area 4) lies inside their union: 4 / 8
    assert union_iou([[1, 0, 3, 2]], [[0, 0, 2, 2], [2, 0, 4, 2]]) == pytest.approx(4 / 8)


def test_degenerate_boxes_are_empty():
    assert box_area([3, 3, 1, 1]) == 0.0
    assert iou([3, 3, 1, 1], [1, 1, 3, 3]) == 0.0  # corners are not swapped
    assert iou([1, 1, 1, 1], [1, 1, 1, 1]) == 0.0  # 0/0 -> 0
    assert union_area([[0, 0, 2, 2], [5, 5, 4, 9]]) == 4.0
    assert union_iou([[3, 3, 1, 1]], [[1, 1, 3, 3]]) == 0.0


def test_grounding_iou_convention():
    assert grounding_iou([[0, 0, 1, 1]], []) is None  # no GT: skipped
    assert grounding_iou([], [[0, 0, 1, 1]]) == 0.0  # GT, no prediction
    assert grounding_iou([[0, 0, 1, 1], [0, 0, 1, 1]], [[0, 0, 1, 1]]) == 1.0  # duplicates change nothing


def test_ovd_precision_by_hand():
    assert OVD_IOU_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    gt = [[0, 0, 10, 10], [50, 50, 60, 60]]
    assert ovd_precision([[0, 0, 10, 10]], gt) == 1.0
    # IoU 0.72 (= 72/100): reaches 0.50..0.70 -> 5 of 10 thresholds
    assert ovd_precision([[0, 0, 10, 7.2]], gt) == pytest.approx(0.5)
    # two predictions, the best exact: 1/2 at every threshold
    assert ovd_precision([[0, 0, 10, 10], [20, 20, 30, 30]], gt) == pytest.approx(0.5)
    # only the FIRST GT box counts
    assert ovd_precision([[50, 50, 60, 60]], gt) == 0.0
    assert ovd_precision([], gt) == 0.0
    assert ovd_precision([[0, 0, 1, 1]], []) is None


@given(int_box(), int_box())
def test_iou_symmetric_bounded_and_matches_raster(a, b):
    value = iou(a, b)
    assert value == iou(b, a)
    assert 0.0 <= value <= 1.0
    ra, rb = raster([a]), raster([b])
    expected = len(ra & rb) / len(ra | rb) if ra and rb else 0.0
    assert value == pytest.approx(expected)


@given(st.lists(int_box(), max_size=8))
def test_union_area_equals_raster_and_bounds(boxes):
    area = union_area(boxes)
    assert area == len(raster(boxes))
    areas = [box_area(b) for b in boxes]
    assert max(areas, default=0.0) <= area <= sum(areas)


@given(st.lists(int_box(), max_size=6), st.lists(int_box(), max_size=6))
def test_union_iou_equals_raster_and_is_symmetric(pred, gt):
    rp, rg = raster(pred), raster(gt)
    expected = len(rp & rg) / len(rp | rg) if rp | rg else 0.0
    assert union_iou(pred, gt) == pytest.approx(expected)
    assert union_iou(pred, gt) == pytest.approx(union_iou(gt, pred))


@given(st.lists(int_box(allow_degenerate=False), min_size=1, max_size=8))
def test_union_iou_of_a_set_with_itself_is_one(boxes):
    assert union_iou(boxes, boxes) == 1.0
    assert union_iou(boxes, list(reversed(boxes))) == 1.0


floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(floats, floats, floats, floats), max_size=6))
def test_union_area_float_boxes_bounds(boxes):
    area = union_area(boxes)
    areas = [box_area(b) for b in boxes]
    assert max(areas, default=0.0) * (1 - 1e-9) <= area <= sum(areas) * (1 + 1e-9) + 1e-6


def test_huge_coordinates_stay_finite():
    big = 1e300
    assert iou([0, 0, big, big], [0, 0, big, big]) == 1.0
    assert iou([0, 0, big, big], [0, 0, big / 2, big]) == pytest.approx(0.5)
    assert union_iou([[0, 0, big, big]], [[0, 0, 10, 10]]) == 0.0  # underflows to 0, finite
    assert math.isfinite(union_iou([[0, 0, 1e30, 1e30]], [[0, 0, 10, 10]]))


def test_non_finite_inputs_raise():
    with pytest.raises(ValueError, match="finite"):
        iou([0, 0, math.nan, 1], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="union_iou"):
        union_iou([[0, 0, math.inf, 1]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="x1, y1, x2, y2"):
        union_area([[0, 0, 1]])


@pytest.mark.timeout(10)
def test_thousands_of_boxes():
    boxes = [[i % 97, (i * 7) % 89, i % 97 + 5, (i * 7) % 89 + 3] for i in range(3000)]
    assert union_area(boxes) == len(raster(boxes))
    assert 0.0 < union_iou(boxes[:1500], boxes[1500:]) <= 1.0
