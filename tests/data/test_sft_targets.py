"""Few-shot SFT on GRIT_data rows: the reconstructed targets (form, frames) and 2 training steps through the entry point.

The released GRIT_data rows carry no targets, so `algorithm=sft` refuses them (shown below on `dataset=grit20`);
`python -m grit_exp.data.build sft-targets` writes the rows with a reconstructed target, and the recipe
`experiment=sft_qwen2_5_vl_3b` (tiny model) trains on them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from grit_exp.data.derived import sft_target_rows, write_built_file
from grit_exp.data.gold_chain import render_chain, sft_gold
from grit_exp.data.validation import parse_row
from grit_exp.errors import DataError
from grit_exp.grounding.frames import ImageGeometry

ROOT = Path(__file__).resolve().parents[2]
BOX_REGEX = re.compile(r"\b\d+,\s*\d+,\s*\d+,\s*\d+\b")  # the paper's box regex


def grit_root(tmp_path: Path) -> Path:
    """GRIT_data's training files and image folders as released (2 rows each, generated images)."""
    root = tmp_path / "GRIT_data"
    for folder, rows in {
        "tallyqa": [("2385012.jpg", "How many dogs are there?", "2", [[4, 6, 40, 50], [60, 10, 100, 70]]),
                    ("2404450.jpg", "How many cars are in the picture?", "0", [])],
        "vsr": [("000000410123.jpg", "What is across from the truck?", "tv", [[30.5, 20.25, 90, 60]]),
                ("000000296471.jpg", "What is inside the refrigerator?", "cat", [[10, 10, 50, 40]])],
    }.items():
        (root / folder).mkdir(parents=True)
        lines = []
        for image, question, answer, boxes in rows:
            Image.new("RGB", (112, 84), (120, 60, 30)).save(root / folder / image)
            row = {"question": question, "answer": answer, "image": image, "width": 112, "height": 84,
                   "bboxs": boxes, "dataset": "tallyqa" if folder == "tallyqa" else "vsr", "split": "train"}
            if folder == "tallyqa":
                row["key_words"] = question.split()[2]
            lines.append(json.dumps(row))
        name = "tallyqa_train_10.jsonl" if folder == "tallyqa" else "vsr_cot_train_10.jsonl"
        (root / name).write_text("\n".join(lines) + "\n")
    return root


def test_targets_are_the_boxes_then_the_answer_in_each_family_frame(tmp_path):
    root = grit_root(tmp_path)
    row = parse_row(json.loads((root / "tallyqa_train_10.jsonl").read_text().splitlines()[0]),
                    image_root=root / "tallyqa", location="x:1")
    gold = sft_gold(row)
    qwen = render_chain(gold, ImageGeometry("qwen2_5_vl", 112, 84, 56, 42))  # the model sees a half-size image
    assert qwen == '[{"bbox_2d": [2, 3, 20, 25]}, {"bbox_2d": [30, 5, 50, 35]}]\n<answer> 2 </answer>'
    internvl = render_chain(gold, ImageGeometry("internvl", 112, 84))
    assert internvl == "<box>[[36, 71, 357, 595], [536, 119, 893, 833]]</box>\n<answer> 2 </answer>"
    assert len(BOX_REGEX.findall(qwen)) == len(BOX_REGEX.findall(internvl)) == 2  # the scorer finds every box
    assert "<think>" not in qwen and "<rethink>" not in internvl  # the SFT prompt's form, not GRIT's


def test_build_writes_rows_with_gold_and_never_overwrites_a_users_file(tmp_path):
    root = grit_root(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "grit_exp.data.build", "sft-targets", "--root", str(root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (root / "tallyqa_train_10_sft.jsonl").read_text().splitlines()]
    assert rows[0]["gold"] == {"boxes": [[4, 6, 40, 50], [60, 10, 100, 70]], "labels": [], "rethink": "",
                               "answer": "2", "style": "box_list"}
    assert rows[1]["gold"]["boxes"] == [] and rows[0]["key_words"] == "dogs"  # other fields kept
    record = json.loads((root / "tallyqa_train_10_sft.jsonl.built.json").read_text())
    assert "RECONSTRUCTED" in record["note"]
    # rebuilding our own file is fine; a file we did not write (or one edited since) is refused
    assert subprocess.run([sys.executable, "-m", "grit_exp.data.build", "sft-targets", "--root", str(root)],
                          cwd=ROOT, capture_output=True, timeout=120).returncode == 0
    (root / "vsr_cot_train_10_sft.jsonl").write_text("mine\n")
    proc = subprocess.run([sys.executable, "-m", "grit_exp.data.build", "sft-targets", "--root", str(root)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "was not written by grit_exp.data.build" in proc.stderr
    assert (root / "vsr_cot_train_10_sft.jsonl").read_text() == "mine\n"
    with pytest.raises(DataError, match="already has a 'gold' chain"):
        sft_target_rows(root / "tallyqa_train_10_sft.jsonl", root / "tallyqa")
    with pytest.raises(DataError, match="was not written"):
        write_built_file(root / "tallyqa_train_10.jsonl", [], {})


def train(root: Path, cache: Path, run: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    args = ["experiment=sft_qwen2_5_vl_3b", "model=tiny_qwen2_5_vl", f"paths.data_root={root}", f"hydra.run.dir={run}",
            "cluster=local", "model.dtype=float32", "model.attn_implementation=sdpa", "trainer.mixed_precision=no",
            "judge=rules", "dataset.eval=[]", "trainer.max_steps=2", "trainer.prompts_per_step=2",
            "trainer.micro_batch_size=2", "trainer.save_every=2", "trainer.learning_rate=1e-3", *overrides]
    return subprocess.run([sys.executable, "-m", "grit_exp.train", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_two_sft_steps_on_grit_rows_through_the_recipe(tmp_path, grit_cache, tiny_model_paths):
    root = grit_root(tmp_path)
    refused = train(root, grit_cache, tmp_path / "refused", "dataset=grit20", "dataset.eval=[]")
    assert refused.returncode != 0 and "SFT needs gold chains" in refused.stdout + refused.stderr
    assert subprocess.run([sys.executable, "-m", "grit_exp.data.build", "sft-targets", "--root", str(root)],
                          cwd=ROOT, capture_output=True, timeout=120).returncode == 0
    proc = train(root, grit_cache, tmp_path / "run")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [m["train/sft_loss"] for m in metrics if "train/sft_loss" in m]
    assert len(losses) == 2 and all(loss > 0 for loss in losses) and losses[1] < losses[0]
    assert (tmp_path / "run" / "checkpoints" / "step_2" / "model" / "config.json").is_file()
