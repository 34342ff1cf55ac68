"""The in-memory form of one GRIT_data row.

A `GritRow` is what the reader yields after validation: every field checked, the image path
resolved, OVD box answers parsed. It deliberately holds no image pixels (adapters open images
lazily) and no prompt text (prompts are built by `grit_exp.data.prompts`). A `GoldChain` is the
structured gold grounded reasoning of a row (synthetic rows carry one), stored in original-image
pixels; `grit_exp.data.gold_chain.format_gold_chain` renders it in a model family's box frame.
A chain's `style` says which target text it renders to: ``grit`` (think / rethink / answer, the GRIT
structure) or ``box_list`` (the few-shot SFT prompt's "a list of the needed boxes, then <answer>").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Box = list[float]  # [x1, y1, x2, y2] in original-image pixels


GOLD_STYLES = ("grit", "box_list")  # the target texts a GoldChain renders to (grit_exp.data.gold_chain)


@dataclass(repr=False)
class GoldChain:
    """A gold grounded reasoning chain in original-image pixels (JSONL key ``"gold"``)."""

    boxes: list[Box]  # the evidence boxes, in the order the chain names them
    labels: list[str]  # one label per box (e.g. "red square"), or empty when unlabelled
    rethink: str  # the short sentence between <rethink> and </rethink> (unused by style "box_list")
    answer: str  # the text after <answer>; a box string "[x1, y1, x2, y2]" for OVD rows
    style: str = "grit"  # one of GOLD_STYLES

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"boxes": self.boxes, "labels": self.labels, "rethink": self.rethink, "answer": self.answer}
        if self.style != "grit":  # the default stays implicit: files and dumps of GRIT-style chains are unchanged
            out["style"] = self.style
        return out

    def __repr__(self) -> str:  # the default style is left out, so fingerprints of GRIT-style chains are unchanged
        style = f", style={self.style!r}" if self.style != "grit" else ""
        return (f"GoldChain(boxes={self.boxes!r}, labels={self.labels!r}, rethink={self.rethink!r}, "
                f"answer={self.answer!r}{style})")


@dataclass
class GritRow:
    question: str
    answer: str
    image: str  # absolute path of the image file
    width: int  # original image width in pixels
    height: int  # original image height in pixels
    bboxs: list[Box]  # ground-truth evidence boxes, original-image pixels
    dataset: str  # e.g. "vsr", "tallyqa", "ovd_position", "mme_count"
    split: str = "train"
    source: str = ""  # "file.jsonl:LINE", for error messages and sample dumps
    answer_box: Box | None = None  # OVD rows: the box parsed from the answer string
    key_words: Any = None  # TallyQA rows carry it; kept as-is
    gold: GoldChain | None = None  # structured gold chain for supervised warm starts (synthetic rows)
    extra: dict[str, Any] = field(default_factory=dict)  # any other fields of the JSON object

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The paper scorer's deduplication key: (dataset, question, image, gt answer)."""
        return (self.dataset, self.question, self.image, self.answer)
