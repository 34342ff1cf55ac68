"""Representative text for training a tiny tokenizer (BPE) for the offline tiny models.

`tokenizer_corpus` returns strings covering what a tiny model reads and writes on the synthetic
data: every question template, gold chains rendered in both families' frames (with and without
labels), answers, digits, numbers up to 1000 (InternVL's frame), the structure tags, and any prompt
texts the caller passes (e.g. the composed prompt's suffix). Rows are generated in memory; nothing
is written. Deliberately left out: training the tokenizer itself (the tiny-model builder does).
"""

from __future__ import annotations

from collections.abc import Sequence

from grit_exp.data.gold_chain import render_chain
from grit_exp.data.schema import GoldChain
from grit_exp.data.synthetic import SyntheticParams, synthetic_rows
from grit_exp.data.synthetic_scenes import COLORS, RELATIONS, SHAPES, plural
from grit_exp.grounding.frames import ImageGeometry

STRUCTURE_TAGS = (
    "<think>",
    "</think>",
    "<rethink>",
    "</rethink>",
    "<answer>",
    "</answer>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    '"bbox_2d"',
    '"label"',
)


def _question_templates() -> list[str]:
    labels = [f"{color} {shape}" for color in COLORS for shape in SHAPES]
    out = [f"How many {color} {plural(shape)} are there?" for color in COLORS for shape in SHAPES]
    out += [f"Where is the {label}?" for label in labels]
    out += [
        f"Is the {a} {relation} the {b}?" for a in labels[:3] for b in labels[-3:] for relation in RELATIONS
    ]
    return out


def tokenizer_corpus(
    num_rows: int = 300,
    seed: int = 0,
    image_size: int = 112,
    qwen_min_pixels: int = 3136,
    qwen_max_pixels: int = 112 * 112,
    prompt_texts: Sequence[str] = (),
) -> list[str]:
    """Strings for a tiny BPE: templates, `num_rows` generated rows' questions / answers / gold chains
    in Qwen and InternVL frames, digits and numbers 0..1000, structure tags, and `prompt_texts`."""
    params = SyntheticParams(num_train=num_rows, num_val=1, image_size=image_size, seed=seed)
    geometries = [
        ImageGeometry.for_qwen_pixels(image_size, image_size, qwen_min_pixels, qwen_max_pixels),
        ImageGeometry.for_internvl(image_size, image_size),
    ]
    texts: list[str] = list(prompt_texts) + list(STRUCTURE_TAGS) + _question_templates()
    texts += [str(n) for n in range(10)] + [str(n) for n in range(1001)] + ["yes", "no"]
    for row, _image in synthetic_rows(params, "train"):
        texts += [row["question"], row["answer"]]
        gold = GoldChain(**row["gold"])
        for geometry in geometries:
            for include_labels in (False, True):
                texts.append(render_chain(gold, geometry, include_labels=include_labels))
    return texts
