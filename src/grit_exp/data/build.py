"""Build the training files that GRIT_data does not ship, into the GRIT_data root (paths.data_root).

    python -m grit_exp.data.build sft-targets --root DIR                 # few-shot SFT rows (Table 1)
    python -m grit_exp.data.build vsr --root DIR --annotations vsr/train.jsonl [--coco-instances F ...]
    python -m grit_exp.data.build tallyqa --root DIR --annotations tallyqa/train.json [--vg-image-data F]
    python -m grit_exp.data.build vsr20 --root DIR [--pool DIR/vsr_train.jsonl] [--seed 0]   # Table 3

Writes, next to the released files:
- ``tallyqa_train_10_sft.jsonl``, ``vsr_cot_train_10_sft.jsonl``: the released training rows with the
  reconstructed SFT target (``gold``, style ``box_list``) read by conf/dataset/grit20_sft.yaml;
- ``vsr_train.jsonl`` / ``tallyqa_train.jsonl``: the data-scaling pools (conf/experiment/
  ablation_qwen2_5_vl_3b_data_scaling.yaml), optionally a seeded ``--num-rows`` subset of the converted set;
- ``vsr_train_20.jsonl``: the 10 released VSR rows + 10 seeded pool rows (conf/dataset/grit20_vsr.yaml).
Each file gets a ``<file>.built.json`` record (sources, seed, sha256); a file without one is never
replaced. Images are not copied: VSR rows name COCO 2017 files, TallyQA rows Visual Genome / COCO
paths, to be found under the set's image folder (vsr/, tallyqa/).

Left out: downloads (see grit_exp.data.download and each set's own instructions).
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections.abc import Sequence
from pathlib import Path

from grit_exp.data.derived import (
    SFT_SOURCES,
    VSR20,
    VSR_BASE,
    VSR_VAL,
    sft_file_name,
    sft_target_rows,
    vsr20_rows,
    write_built_file,
)
from grit_exp.data.public_formats import CocoIndex, tallyqa_rows, vg_sizes, vsr_rows
from grit_exp.errors import DataError

log = logging.getLogger(__name__)


def _subset(rows: list, num_rows: int | None, seed: int) -> list:
    if num_rows is None or num_rows >= len(rows):
        return rows
    return [rows[i] for i in sorted(random.Random(seed).sample(range(len(rows)), num_rows))]


def build_sft_targets(root: Path) -> list[Path]:
    out = []
    for source, images in SFT_SOURCES.items():
        rows = sft_target_rows(root / source, root / images)
        out.append(write_built_file(root / sft_file_name(source), rows, {
            "built_by": "python -m grit_exp.data.build sft-targets", "source": source,
            "note": "RECONSTRUCTED few-shot SFT targets (the paper did not release its own): each row's bboxs, then its answer",
        }))
    return out


def build_vsr(root: Path, annotations: Path, coco_instances: list[Path], num_rows: int | None, seed: int) -> Path:
    coco = CocoIndex(coco_instances) if coco_instances else None
    rows = _subset(vsr_rows(annotations, image_root=root / "vsr", coco=coco), num_rows, seed)
    return write_built_file(root / "vsr_train.jsonl", rows, {
        "built_by": "python -m grit_exp.data.build vsr", "annotations": str(annotations),
        "coco_instances": [str(p) for p in coco_instances], "num_rows": num_rows, "seed": seed,
        "rows_with_boxes": sum(bool(r["bboxs"]) for r in rows), "rows": len(rows)})


def build_tallyqa(root: Path, annotations: Path, vg_image_data: Path | None, num_rows: int | None, seed: int) -> Path:
    sizes = vg_sizes(vg_image_data) if vg_image_data else None
    rows = _subset(tallyqa_rows(annotations, image_root=root / "tallyqa", sizes=sizes), num_rows, seed)
    return write_built_file(root / "tallyqa_train.jsonl", rows, {
        "built_by": "python -m grit_exp.data.build tallyqa", "annotations": str(annotations),
        "vg_image_data": str(vg_image_data) if vg_image_data else None, "num_rows": num_rows, "seed": seed,
        "rows": len(rows)})


def build_vsr20(root: Path, pool: Path, seed: int) -> Path:
    rows = vsr20_rows(root / VSR_BASE, pool, seed=seed, val=root / VSR_VAL)
    return write_built_file(root / VSR20, rows, {
        "built_by": "python -m grit_exp.data.build vsr20", "base": VSR_BASE, "pool": str(pool), "seed": seed,
        "note": "RECONSTRUCTED: the 10 released VSR rows + 10 seeded pool rows (the paper's other 10 are not published)"})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m grit_exp.data.build", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("sft-targets", "vsr", "tallyqa", "vsr20"):
        sub = commands.add_parser(name)
        sub.add_argument("--root", required=True, type=Path, help="the GRIT_data folder (paths.data_root)")
        sub.add_argument("--seed", type=int, default=0, help="seed of any subset drawn (default 0)")
        if name in ("vsr", "tallyqa"):
            sub.add_argument("--annotations", required=True, type=Path, help="the public annotation file")
            sub.add_argument("--num-rows", type=int, default=None, help="keep a seeded subset of this many rows")
        if name == "vsr":
            sub.add_argument("--coco-instances", type=Path, action="append", default=[],
                             help="COCO instances_train2017.json / instances_val2017.json (sizes + boxes; repeatable)")
        if name == "tallyqa":
            sub.add_argument("--vg-image-data", type=Path, default=None, help="Visual Genome image_data.json (sizes)")
        if name == "vsr20":
            sub.add_argument("--pool", type=Path, default=None,
                             help="VSR rows in GRIT_data format to draw 10 from (default ROOT/vsr_train.jsonl)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    root = args.root
    try:
        if args.command == "sft-targets":
            written = build_sft_targets(root)
        elif args.command == "vsr":
            written = [build_vsr(root, args.annotations, args.coco_instances, args.num_rows, args.seed)]
        elif args.command == "tallyqa":
            written = [build_tallyqa(root, args.annotations, args.vg_image_data, args.num_rows, args.seed)]
        else:
            written = [build_vsr20(root, args.pool or root / "vsr_train.jsonl", args.seed)]
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for path in written:
        log.info("wrote %s", path)


if __name__ == "__main__":
    main()
