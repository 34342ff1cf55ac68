"""A replay fixture of 42 recorded completions whose GIoU / OVD values are worked out by hand.

Every expected number below comes from rectangle areas computed in the comment next to it, NOT from
grit_exp: the test checks the implementation against this arithmetic.

Frames (grit.md section 8 and the authors' scorer, section 5):
- "qa.png" 224 x 112, Qwen, image_grid_thw [1, 4, 8] -> input frame 8*14 x 4*14 = 112 x 56:
  exact mapping multiplies x and y by 2; the paper convention keeps the numbers as written.
- "qb.png" 280 x 140, Qwen, no image_grid_thw -> smart resize with min_pixels 3136, max_pixels 12544:
  round(140/28)*28 = 140, round(280/28)*28 = 280, 140*280 = 39200 > 12544, so
  beta = sqrt(39200/12544) = 1.7678, h = floor(140/1.7678/28)*28 = floor(2.83)*28 = 56,
  w = floor(280/1.7678/28)*28 = floor(5.66)*28 = 140: input 140 x 56, exact x*2, y*2.5.
- "ia.png" 333 x 150, InternVL: exact x*0.333, y*0.15; paper int(x/1000*333), int(y/1000*150):
  500 -> 166.5 / 166 (x), 75 / 75 (y); 250 -> 83.25 / 83; 750 -> 249.75 / 249 (x), 112.5 / 112 (y);
  125 -> 41.625 / 41; 1000 -> 150 (y).
- "ib.png" 1000 x 500, InternVL: x*1, y*0.5 (exact multiples: both conventions agree).
OVD precision: thresholds 0.50, 0.55, ..., 0.95; 1/len(pred) per threshold reached by the best IoU
against the answer box; mean over the 10 thresholds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

IMAGES = {"qa.png": (224, 112), "qb.png": (280, 140), "ia.png": (333, 150), "ib.png": (1000, 500)}
QA_GRID = [1, 4, 8]
MIN_PIXELS, MAX_PIXELS = 3136, 12544


@dataclass
class Line:
    dataset: str
    image: str
    family: str
    question: str
    answer: str
    bboxs: list
    completion: str
    giou_paper: float | None  # None: no GT boxes, the sample is skipped
    giou: float | None
    ovd_paper: float | None = None  # None: not a box-answer row
    ovd: float | None = None
    acc: float | None = None  # rules judge; None: not judged (box answers)
    kept: bool = True  # False: a duplicate of an earlier line (dropped by the dedup)
    grid: bool = True  # qa.png lines carry image_grid_thw


def chain(boxes: str, answer: str) -> str:
    return f"<think> looking {boxes} </think>\n<rethink> checked </rethink>\n<answer>{answer}</answer>"


G_VSR = [[0, 0, 100, 50]]  # area 5000
G_TALLY = [[0, 0, 100, 100]]  # area 10000
G_GQA = [[0, 0, 166, 75]]  # area 12450

LINES: list[Line] = [
    # ---------------- vsr: Qwen, qa.png (exact = x2), GT [0,0,100,50] area 5000
    # pred [0,0,50,25]: paper area 1250 inside GT -> 1250/5000 = 0.25; exact [0,0,100,50] = GT -> 1
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the cat left of the dog?", "yes", G_VSR,
         chain('{"bbox_2d": [0, 0, 50, 25], "label": "cat"}', "yes"), 0.25, 1.0, acc=1.0),
    # pred [50,0,100,50]: paper inter 50*50 = 2500, union 5000 -> 0.5; exact [100,0,200,100] disjoint -> 0
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the cup on the table?", "no", G_VSR,
         chain("[50, 0, 100, 50]", "yes"), 0.5, 0.0, acc=0.0),
    # two preds [0,0,25,25] + [25,0,50,25]: paper union [0,0,50,25] -> 0.25; exact [0,0,50,50] + [50,0,100,50] = GT -> 1
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the bird above the car?", "yes", G_VSR,
         chain("[0, 0, 25, 25] and [25, 0, 50, 25]", "Yes"), 0.25, 1.0, acc=1.0),
    # no predicted box, GT present -> 0 in both conventions
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the man behind the tree?", "no", G_VSR,
         "<answer>no</answer>", 0.0, 0.0, acc=1.0),
    # no GT boxes -> skipped in both GIoU means
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the sky blue?", "yes", [],
         chain("[0, 0, 50, 25]", "yes"), None, None, acc=1.0),
    # duplicate of the first line (same dataset, question, image, answer): dropped
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the cat left of the dog?", "yes", G_VSR,
         "<answer>no</answer>", 0.0, 0.0, acc=0.0, kept=False),
    # same question and image as the first line but another answer: NOT a duplicate.
    # pred [0,0,100,50]: paper = GT -> 1; exact [0,0,200,100]: 5000/20000 = 0.25
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the cat left of the dog?", "no", G_VSR,
         chain("[0, 0, 100, 50]", "no"), 1.0, 0.25, acc=1.0),
    # the same box twice (duplicates kept by the regex, the union is unchanged): 0.25 / 1
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the lamp near the bed?", "yes", G_VSR,
         chain("[0, 0, 50, 25] [0, 0, 50, 25]", "yes"), 0.25, 1.0, acc=1.0),
    # GT two boxes [0,0,50,50] + [150,0,200,50] (union 5000); pred [0,0,25,25]:
    # paper 625/5000 = 0.125; exact [0,0,50,50]: 2500/5000 = 0.5
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the kite over the boat?", "yes", [[0, 0, 50, 50], [150, 0, 200, 50]],
         chain("[0, 0, 25, 25]", "no"), 0.125, 0.5, acc=0.0),
    # bare numbers without brackets: the paper regex still finds them -> as the first line
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the bus near the sign?", "yes", G_VSR,
         chain("the box is 0, 0, 50, 25 here", "yes"), 0.25, 1.0, acc=1.0),
    # degenerate pred [50,25,0,0] (swapped corners: the empty set) -> 0 / 0
    Line("vsr", "qa.png", "qwen2_5_vl", "Is the dog under the chair?", "no", G_VSR,
         chain("[50, 25, 0, 0]", "no"), 0.0, 0.0, acc=1.0),
    # ---------------- tallyqa: Qwen, qb.png without grid (exact x2, y2.5), GT [0,0,100,100] area 10000
    # [0,0,50,40]: paper 2000/10000 = 0.2; exact [0,0,100,100] = GT -> 1
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many apples?", "2", G_TALLY,
         chain("[0, 0, 50, 40]", "2"), 0.2, 1.0, acc=1.0, grid=False),
    # [0,0,25,20]: paper 500/10000 = 0.05; exact [0,0,50,50]: 2500/10000 = 0.25
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many pears?", "2", G_TALLY,
         chain("[0, 0, 25, 20]", "3"), 0.05, 0.25, acc=0.0, grid=False),
    # [50,40,100,80]: paper inside GT, 50*40 = 2000 -> 0.2; exact [100,100,200,200] only touches the corner -> 0
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many plums?", "2", G_TALLY,
         chain("[50, 40, 100, 80]", "2"), 0.2, 0.0, acc=1.0, grid=False),
    # no box -> 0 / 0; the answer "two" is the number 2
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many figs?", "2", G_TALLY,
         "<answer>two</answer>", 0.0, 0.0, acc=1.0, grid=False),
    # [0,0,25,20] + [25,20,50,40]: paper 500 + 500 (corner-touching) = 1000 -> 0.1;
    # exact [0,0,50,50] + [50,50,100,100] = 5000 -> 0.5
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many kiwis?", "2", G_TALLY,
         chain("[0, 0, 25, 20], [25, 20, 50, 40]", "2"), 0.1, 0.5, acc=1.0, grid=False),
    # duplicate of "How many pears?": dropped
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many pears?", "2", G_TALLY,
         chain("[0, 0, 100, 40]", "2"), 0.4, 0.5, acc=1.0, kept=False, grid=False),
    # no GT and no box -> skipped
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many clouds?", "0", [],
         "<answer>0</answer>", None, None, acc=1.0, grid=False),
    # [0,0,100,40]: paper 4000/10000 = 0.4; exact [0,0,200,100]: 10000/20000 = 0.5
    Line("tallyqa", "qb.png", "qwen2_5_vl", "How many limes?", "2", G_TALLY,
         chain("[0, 0, 100, 40]", "4"), 0.4, 0.5, acc=0.0, grid=False),
    # ---------------- gqa: InternVL, ia.png 333 x 150, GT [0,0,166,75] area 12450
    # [0,0,500,500]: paper [0,0,166,75] = GT -> 1; exact [0,0,166.5,75]: 12450/12487.5 (same height: 166/166.5)
    Line("gqa", "ia.png", "internvl", "What is on the left?", "tv", G_GQA,
         chain("<ref>tv</ref><box>[[0, 0, 500, 500]]</box>", "tv"), 1.0, 166 / 166.5, acc=1.0),
    # [250,0,500,500]: paper [83,0,166,75]: width 83 of 166 -> 0.5;
    # exact [83.25,0,166.5,75]: same height, inter width 166 - 83.25 = 82.75, union width 166.5
    Line("gqa", "ia.png", "internvl", "What is in the middle?", "lamp", G_GQA,
         chain("<ref>lamp</ref><box>[[250, 0, 500, 500]]</box>", "a lamp"), 0.5, 82.75 / 166.5, acc=1.0),
    # no box -> 0 / 0
    Line("gqa", "ia.png", "internvl", "What color is the car?", "red", G_GQA,
         "<answer>blue</answer>", 0.0, 0.0, acc=0.0),
    # two boxes [0,0,500,500] and [500,500,750,750] (corner-touching):
    # paper [0,0,166,75] + [166,75,249,112]: union 12450 + 83*37 = 15521, inter 12450;
    # exact [0,0,166.5,75] + [166.5,75,249.75,112.5]: union 12487.5 + 83.25*37.5 = 15609.375, inter 12450
    Line("gqa", "ia.png", "internvl", "What is near the window?", "cat", G_GQA,
         chain("<ref>cat</ref><box>[[0, 0, 500, 500], [500, 500, 750, 750]]</box>", "cat"),
         12450 / 15521, 12450 / 15609.375, acc=1.0),
    # no GT -> skipped
    Line("gqa", "ia.png", "internvl", "Is it daytime?", "yes", [],
         chain("<ref>sun</ref><box>[[0, 0, 500, 500]]</box>", "yes"), None, None, acc=1.0),
    # duplicate of "What is on the left?": dropped
    Line("gqa", "ia.png", "internvl", "What is on the left?", "tv", G_GQA,
         "<answer>sofa</answer>", 0.0, 0.0, acc=0.0, kept=False),
    # [0,0,125,1000]: paper [0,0,41,150]: inter 41*75 = 3075, union 12450 + 6150 - 3075 = 15525;
    # exact [0,0,41.625,150]: inter 41.625*75 = 3121.875, union 12450 + 6243.75 - 3121.875 = 15571.875
    Line("gqa", "ia.png", "internvl", "What is tall?", "pole", G_GQA,
         chain("<ref>pole</ref><box>[[0, 0, 125, 1000]]</box>", "pole"), 3075 / 15525, 3121.875 / 15571.875, acc=1.0),
    # ---------------- ovd_q: Qwen, qa.png (exact x2); answer box = GT [0,0,100,50] area 5000
    # [0,0,50,25]: paper IoU 0.25 < 0.5 -> ovd 0; exact = answer box, IoU 1 -> 10/10 * 1/1 = 1
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the red mug", "[0, 0, 100, 50]", G_VSR,
         chain("[0, 0, 50, 25]", "there"), 0.25, 1.0, ovd_paper=0.0, ovd=1.0),
    # [0,0,100,50] + [0,0,50,25]: paper best IoU 1 (first box) -> every threshold, 1/2 each -> 0.5;
    # exact [0,0,200,100] (IoU 0.25) + [0,0,100,50] (IoU 1) -> 0.5.
    # GIoU: paper union = [0,0,100,50] -> 1; exact union [0,0,200,100] -> 5000/20000 = 0.25
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the blue mug", "[0, 0, 100, 50]", G_VSR,
         chain("[0, 0, 100, 50] [0, 0, 50, 25]", "there"), 1.0, 0.25, ovd_paper=0.5, ovd=0.5),
    # [0,0,50,18]: paper IoU 900/5000 = 0.18 -> 0; exact [0,0,100,36]: 3600/5000 = 0.72 -> 0.50..0.70 = 5/10 -> 0.5
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the green mug", "[0, 0, 100, 50]", G_VSR,
         chain("[0, 0, 50, 18]", "there"), 0.18, 0.72, ovd_paper=0.0, ovd=0.5),
    # no box -> 0 everywhere
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the white mug", "[0, 0, 100, 50]", G_VSR,
         "<answer>nothing</answer>", 0.0, 0.0, ovd_paper=0.0, ovd=0.0),
    # [0,0,50,24]: paper 1200/5000 = 0.24 -> 0; exact [0,0,100,48]: 0.96 >= 0.95 -> 10/10 -> 1
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the black mug", "[0, 0, 100, 50]", G_VSR,
         chain("[0, 0, 50, 24]", "there"), 0.24, 0.96, ovd_paper=0.0, ovd=1.0),
    # [0,0,40,25]: paper 1000/5000 = 0.2 -> 0; exact [0,0,80,50]: 4000/5000 = 0.8, on the 0.80 threshold
    # (both are the double nearest 0.8) -> 0.50..0.80 = 7/10 -> 0.7
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the gray mug", "[0, 0, 100, 50]", G_VSR,
         chain("[0, 0, 40, 25]", "there"), 0.2, 0.8, ovd_paper=0.0, ovd=0.7),
    # duplicate of "the red mug": dropped
    Line("ovd_q", "qa.png", "qwen2_5_vl", "the red mug", "[0, 0, 100, 50]", G_VSR,
         "<answer>none</answer>", 0.0, 0.0, ovd_paper=0.0, ovd=0.0, kept=False),
    # ---------------- ovd_i: InternVL; ib.png 1000 x 500 (x1, y0.5: conventions agree) and ia.png
    # [0,0,500,500] -> [0,0,500,250] = answer box: IoU 1 -> 1; GIoU 1
    Line("ovd_i", "ib.png", "internvl", "the left half", "[0, 0, 500, 250]", [[0, 0, 500, 250]],
         chain("<box>[[0, 0, 500, 500]]</box>", "there"), 1.0, 1.0, ovd_paper=1.0, ovd=1.0),
    # [0,0,250,500] -> [0,0,250,250]: IoU 62500/125000 = 0.5, on the 0.50 threshold only -> 1/10 = 0.1; GIoU 0.5
    Line("ovd_i", "ib.png", "internvl", "the left quarter", "[0, 0, 500, 250]", [[0, 0, 500, 250]],
         chain("<box>[[0, 0, 250, 500]]</box>", "there"), 0.5, 0.5, ovd_paper=0.1, ovd=0.1),
    # three boxes, the best IoU 1 -> 1/3 at every threshold -> 1/3; union = [0,0,500,250] -> GIoU 1
    Line("ovd_i", "ib.png", "internvl", "the top left", "[0, 0, 500, 250]", [[0, 0, 500, 250]],
         chain("<box>[[0, 0, 500, 500], [0, 0, 500, 500], [0, 0, 125, 125]]</box>", "there"),
         1.0, 1.0, ovd_paper=1 / 3, ovd=1 / 3),
    # no box -> 0
    Line("ovd_i", "ib.png", "internvl", "the far right", "[0, 0, 500, 250]", [[0, 0, 500, 250]],
         "<answer>none</answer>", 0.0, 0.0, ovd_paper=0.0, ovd=0.0),
    # ia.png, answer [0,0,99.75,75]; pred [0,0,500,500]: paper [0,0,166,75]: IoU 99.75/166 = 0.6009 -> 0.50,
    # 0.55, 0.60 -> 0.3; exact [0,0,166.5,75]: 99.75/166.5 = 0.5991 -> 0.50, 0.55 -> 0.2 (the truncation matters)
    Line("ovd_i", "ia.png", "internvl", "the small tv", "[0, 0, 99.75, 75]", [[0, 0, 99.75, 75]],
         chain("<box>[[0, 0, 500, 500]]</box>", "there"), 99.75 / 166, 99.75 / 166.5, ovd_paper=0.3, ovd=0.2),
    # a box answer without GT boxes: OVD precision counted, GIoU skipped; [0,0,500,500] -> IoU 1 -> 1
    Line("ovd_i", "ib.png", "internvl", "the whole left", "[0, 0, 500, 250]", [],
         chain("<box>[[0, 0, 500, 500]]</box>", "there"), None, None, ovd_paper=1.0, ovd=1.0),
    # ---------------- mme_count: Qwen, qa.png, no GT boxes at all: GIoU null, only ACC
    Line("mme_count", "qa.png", "qwen2_5_vl", "Are there two dogs?", "Yes", [],
         chain("[0, 0, 50, 25]", "yes"), None, None, acc=1.0),
    Line("mme_count", "qa.png", "qwen2_5_vl", "Are there three dogs?", "No", [],
         "<answer>yes</answer>", None, None, acc=0.0),
    Line("mme_count", "qa.png", "qwen2_5_vl", "Are there four dogs?", "No", [],
         # no <answer> under the GRIT prompt: ACC 0, the judge is not asked (eval.untagged_answer=zero, the
         # released scoring); the rules judge would give the whole completion 1 (untagged_answer=judge_whole_completion)
         "No, there are not.", None, None, acc=0.0),
]


def write_fixture(folder: Path) -> Path:
    """The images (solid colour PNGs) and replay.jsonl in `folder`; returns the replay file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in IMAGES.items():
        Image.new("RGB", size, (128, 128, 128)).save(folder / name)
    path = folder / "replay.jsonl"
    with path.open("w") as handle:
        for line in LINES:
            obj = {
                "question": line.question, "answer": line.answer, "image": line.image,
                "width": IMAGES[line.image][0], "height": IMAGES[line.image][1], "bboxs": line.bboxs,
                "dataset": line.dataset, "completion": line.completion, "model_family": line.family,
            }
            if line.family == "qwen2_5_vl" and line.image == "qa.png" and line.grid:
                obj["image_grid_thw"] = QA_GRID
            handle.write(json.dumps(obj) + "\n")
    return path


def expected_means(key: str) -> dict[str, float | None]:
    """Per dataset: the plain average of the hand-worked values of the kept lines (None if none)."""
    out: dict[str, float | None] = {}
    for dataset in dict.fromkeys(line.dataset for line in LINES):
        values = [getattr(line, key) for line in LINES if line.dataset == dataset and line.kept]
        values = [v for v in values if v is not None]
        out[dataset] = sum(values) / len(values) if values else None
    return out


def replay_overrides(path: Path, *more: str) -> list[str]:
    """conf/eval.yaml overrides replaying `path`; the model path does not exist, so a replay that
    tried to load a model would fail."""
    return [
        "rollout=replay",
        f"rollout.path={path}",
        "model.path=/nonexistent/model",
        "model.tiny_builder=null",
        f"model.min_pixels={MIN_PIXELS}",
        f"model.max_pixels={MAX_PIXELS}",
        *more,
    ]
