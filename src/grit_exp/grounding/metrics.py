"""IoU of boxes and of unions of boxes, the paper's grounding IoU, and the OVD set precision.

- `iou(a, b)`: intersection over union of two boxes.
- `union_area(boxes)`: area of a union of rectangles, computed exactly (up to float rounding) by a
  sweep over x with a segment tree over the compressed y coordinates: O(n log n), no rasterising.
- `union_iou(pred, gt)`: area(U_pred n U_gt) / area(U_pred u U_gt), where U is the union of a set of
  boxes. The same sweep tracks both sets, so the intersection of the two unions is measured
  directly (not as a difference of large areas).
- `grounding_iou(pred, gt)`: the authors' per-sample GIoU: None without GT boxes (the sample is
  skipped), 0.0 with GT but no prediction, else `union_iou`.
- `ovd_precision(pred, gt)`: over IoU thresholds 0.50, 0.55, ..., 0.95: 1/len(pred) if any predicted
  box reaches the threshold against the FIRST GT box, else 0; the mean over thresholds.

Conventions: boxes are [x1, y1, x2, y2]; a degenerate box (x2 <= x1 or y2 <= y1) is the empty set
(area 0, intersects nothing) - its corners are not swapped; 0/0 (both unions empty) is 0.0. Inputs
must be finite (NaN or inf raise ValueError; `scoring.py` drops such boxes before calling). IoUs of
astronomically large boxes are computed after an exact power-of-two rescaling, so they stay finite.
The thresholds are written (50 + 5k) / 100, the nearest doubles to 0.55 etc. (not numpy.arange's
0.6000000000000001), which only matters for an IoU exactly on a threshold.

Left out: parsing (`boxes.py`), frames (`frames.py`), per-sample glue (`scoring.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

OVD_IOU_THRESHOLDS: tuple[float, ...] = tuple((50 + 5 * k) / 100 for k in range(10))
_RESCALE_ABOVE = 1e150  # products of coordinates beyond this could overflow a double

Box = Sequence[float]


def _checked(boxes: Sequence[Box], name: str) -> list[tuple[float, float, float, float]]:
    out = []
    for box in boxes:
        if len(box) != 4:
            raise ValueError(f"{name}: a box is [x1, y1, x2, y2]; got {list(box)!r}")
        x1, y1, x2, y2 = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise ValueError(f"{name}: box coordinates must be finite, got {list(box)!r}")
        out.append((x1, y1, x2, y2))
    return out


def _rescaled(
    *box_lists: list[tuple[float, float, float, float]],
) -> list[list[tuple[float, float, float, float]]]:
    """The boxes multiplied by one power of two (exact) so that no coordinate exceeds 1, when needed."""
    biggest = max((abs(v) for boxes in box_lists for box in boxes for v in box), default=0.0)
    if biggest <= _RESCALE_ABOVE:
        return list(box_lists)
    _, exponent = math.frexp(biggest)
    return [[tuple(math.ldexp(v, -exponent) for v in box) for box in boxes] for boxes in box_lists]  # type: ignore[misc]


def box_area(box: Box) -> float:
    """Area of one box; 0 for a degenerate one."""
    (x1, y1, x2, y2) = _checked([box], "box_area")[0]
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, in [0, 1]; 0.0 when both are degenerate."""
    (ca,), (cb,) = _rescaled(_checked([a], "iou"), _checked([b], "iou"))
    ax1, ay1, ax2, ay2 = ca
    bx1, by1, bx2, by2 = cb
    area_a = max(0.0, ax2 - ax1) * max(0.0, ay2 - ay1)
    area_b = max(0.0, bx2 - bx1) * max(0.0, by2 - by1)
    if area_a == 0.0 or area_b == 0.0:
        return 0.0
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = area_a + area_b - inter
    return min(1.0, inter / union) if union > 0 else 0.0


def _sweep(boxes_a: list, boxes_b: list) -> tuple[float, float, float]:
    """(area of U_a, area of U_b, area of U_a n U_b) by one sweep; degenerate boxes are ignored."""
    boxes_a = [b for b in boxes_a if b[2] > b[0] and b[3] > b[1]]
    boxes_b = [b for b in boxes_b if b[2] > b[0] and b[3] > b[1]]
    if not boxes_a and not boxes_b:
        return 0.0, 0.0, 0.0
    ys = sorted({v for b in boxes_a + boxes_b for v in (b[1], b[3])})
    y_index = {y: i for i, y in enumerate(ys)}
    n = len(ys) - 1  # elementary y intervals [ys[i], ys[i+1])
    events = []
    for which, boxes in ((0, boxes_a), (1, boxes_b)):
        for x1, y1, x2, y2 in boxes:
            lo, hi = y_index[y1], y_index[y2]
            events.append((x1, 1, which, lo, hi))
            events.append((x2, -1, which, lo, hi))
    events.sort(key=lambda e: e[0])
    size = 4 * n
    count = ([0] * size, [0] * size)  # cover counts of set a / set b at each node
    len_a, len_b, len_ab = [0.0] * size, [0.0] * size, [0.0] * size

    def pull(node: int, lo: int, hi: int) -> None:
        full = ys[hi] - ys[lo]
        if hi - lo == 1:
            child_a = child_b = child_ab = 0.0
        else:
            left, right = 2 * node, 2 * node + 1
            child_a, child_b, child_ab = (
                len_a[left] + len_a[right],
                len_b[left] + len_b[right],
                len_ab[left] + len_ab[right],
            )
        covered_a, covered_b = count[0][node] > 0, count[1][node] > 0
        if covered_a and covered_b:
            len_a[node] = len_b[node] = len_ab[node] = full
        elif covered_a:
            len_a[node], len_b[node], len_ab[node] = full, child_b, child_b
        elif covered_b:
            len_a[node], len_b[node], len_ab[node] = child_a, full, child_a
        else:
            len_a[node], len_b[node], len_ab[node] = child_a, child_b, child_ab

    def update(node: int, lo: int, hi: int, left: int, right: int, which: int, delta: int) -> None:
        if right <= lo or hi <= left:
            return
        if left <= lo and hi <= right:
            count[which][node] += delta
        else:
            mid = (lo + hi) // 2
            update(2 * node, lo, mid, left, right, which, delta)
            update(2 * node + 1, mid, hi, left, right, which, delta)
        pull(node, lo, hi)

    area_a = area_b = area_ab = 0.0
    previous_x = events[0][0]
    for x, delta, which, lo, hi in events:
        if x != previous_x:
            dx = x - previous_x
            area_a += dx * len_a[1]
            area_b += dx * len_b[1]
            area_ab += dx * len_ab[1]
            previous_x = x
        update(1, 0, n, lo, hi, which, delta)
    return area_a, area_b, area_ab


def union_area(boxes: Sequence[Box]) -> float:
    """Exact area of the union of the boxes (degenerate boxes add nothing)."""
    area, _, _ = _sweep(_checked(boxes, "union_area"), [])
    return area


def union_iou(pred_boxes: Sequence[Box], gt_boxes: Sequence[Box]) -> float:
    """IoU of the union of `pred_boxes` and the union of `gt_boxes`; 0.0 when both unions are empty."""
    pred, gt = _rescaled(_checked(pred_boxes, "union_iou(pred)"), _checked(gt_boxes, "union_iou(gt)"))
    area_pred, area_gt, inter = _sweep(pred, gt)
    union = area_pred + area_gt - inter
    if union <= 0.0:
        return 0.0
    return min(1.0, max(0.0, inter / union))


def grounding_iou(pred_boxes: Sequence[Box], gt_boxes: Sequence[Box]) -> float | None:
    """The authors' per-sample GIoU: None without GT boxes (skipped), 0.0 with GT but no prediction."""
    if len(gt_boxes) == 0:
        return None
    if len(pred_boxes) == 0:
        return 0.0
    return union_iou(pred_boxes, gt_boxes)


def ovd_precision(
    pred_boxes: Sequence[Box], gt_boxes: Sequence[Box], thresholds: Sequence[float] = OVD_IOU_THRESHOLDS
) -> float | None:
    """The scorer's OVD set precision against the FIRST GT box; None without GT, 0.0 without prediction."""
    if len(gt_boxes) == 0:
        return None
    if len(pred_boxes) == 0:
        return 0.0
    first_gt = gt_boxes[0]
    best = max(iou(box, first_gt) for box in pred_boxes)
    hit_value = 1.0 / len(pred_boxes)
    return sum(hit_value if best >= t else 0.0 for t in thresholds) / len(thresholds)
