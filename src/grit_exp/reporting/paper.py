"""The paper's Table 1 as data: its published numbers, its columns, its row names.

`PAPER_TABLE1_MARKDOWN` is the table of the GRIT paper (arXiv 2505.15879, Table 1) copied verbatim
from ../shared/reference/grit.md section 7; `PAPER_TABLE1` is that text parsed once at import into
numbers (ACC x100 and GIoU), keeping each number's published spelling ("0.00" vs "0.000") for
display. `COLUMNS` says which rows' `dataset` values feed which column. Left out: reading runs
(`collect.py`) and laying out tables (`table1.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER_TABLE1_MARKDOWN = """\
| model, method | VSR | TallyQA | GQA | MathVista ACC | MME ACC | OVDEval GIoU |
|---|---|---|---|---|---|---|
| Qwen2.5-VL-3B, direct | 49.5 / 0.00 | 40.8 / 0.00 | 55.4 / 0.00 | 58.5 | 88.9 | 0.389 |
| Qwen, CoT | 37.5 / 0.122 | 33.2 / 0.113 | 39.5 / 0.269 | 33.0 | 41.3 | 0.388 |
| Qwen, one-shot ICL | 13.2 / 0.213 | 36.3 / 0.268 | 20.4 / 0.441 | 29.1 | 24.7 | 0.328 |
| Qwen, few-shot SFT | 59.7 / 0.216 | 44.5 / 0.284 | 64.6 / 0.475 | 45.0 | 68.3 | 0.391 |
| Qwen, GRIT | 72.9 / 0.325 | 47.8 / 0.447 | 62.8 / 0.485 | 59.8 | 89.3 | 0.398 |
| InternVL3-2B, direct | 52.9 / 0.000 | 15.5 / 0.000 | 29.4 / 0.000 | 43.0 | 40.0 | 0.551 |
| InternVL, CoT | 6.4 / 0.428 | 6.8 / 0.279 | 4.1 / 0.292 | 7.5 | 14.0 | 0.219 |
| InternVL, one-shot ICL | 3.4 / 0.435 | 3.7 / 0.275 | 2.6 / 0.435 | 14.1 | 1.3 | 0.593 |
| InternVL, few-shot SFT | 54.0 / 0.381 | 22.5 / 0.116 | 46.8 / 0.114 | 17.4 | 62.3 | 0.078 |
| InternVL, GRIT | 64.9 / 0.495 | 44.2 / 0.324 | 63.2 / 0.457 | 48.2 | 82.0 | 0.560 |
"""

# The paper's row names -> (model config name, method key). Method keys are the prompt names.
PAPER_MODEL_NAMES = {"Qwen2.5-VL-3B": "qwen2_5_vl_3b", "Qwen": "qwen2_5_vl_3b",
                     "InternVL3-2B": "internvl3_2b", "InternVL": "internvl3_2b"}
PAPER_METHOD_NAMES = {"direct": "direct", "CoT": "cot", "one-shot ICL": "icl1", "few-shot SFT": "sft", "GRIT": "grit"}

MODEL_TITLES = {"qwen2_5_vl_3b": "Qwen2.5-VL-3B", "internvl3_2b": "InternVL3-2B"}
METHOD_TITLES = {"direct": "direct", "cot": "CoT", "icl1": "one-shot ICL", "sft": "few-shot SFT", "grit": "GRIT"}
MODEL_ORDER = ("qwen2_5_vl_3b", "internvl3_2b")
METHOD_ORDER = ("direct", "cot", "icl1", "sft", "grit")

# The four MME subsets of GRIT_data's mme_val.jsonl (their `dataset` values).
MME_SUBSETS = ("mme_count", "mme_position", "mme_existence", "mme_color")


@dataclass(frozen=True)
class Column:
    """One benchmark column of Table 1 and the rows' `dataset` values that feed it."""

    key: str  # "vsr", ...; metric keys are f"{key}_acc" / f"{key}_giou"
    title: str
    datasets: tuple[str, ...]  # exact `dataset` values accepted (first one present wins)
    acc: bool
    giou: bool
    subset_prefix: str | None = None  # MME: every dataset starting with this is a subset, averaged


# GQA's and MathVista's `dataset` spellings are not documented; the accepted aliases are listed here.
COLUMNS: tuple[Column, ...] = (
    Column("vsr", "VSR", ("vsr",), acc=True, giou=True),
    Column("tallyqa", "TallyQA", ("tallyqa",), acc=True, giou=True),
    Column("gqa", "GQA", ("gqa",), acc=True, giou=True),
    Column("mathvista", "MathVista", ("mathvista", "mathvista_mini", "mathvista_testmini"), acc=True, giou=False),
    Column("mme", "MME", ("mme",), acc=True, giou=False, subset_prefix="mme_"),
    Column("ovd", "OVDEval", ("ovd_position", "ovdeval", "ovd"), acc=False, giou=True),
)


def metric_keys() -> list[str]:
    """Table 1's numbers in column order: vsr_acc, vsr_giou, ..., mme_acc, ovd_giou."""
    keys = []
    for col in COLUMNS:
        if col.acc:
            keys.append(f"{col.key}_acc")
        if col.giou:
            keys.append(f"{col.key}_giou")
    return keys


@dataclass(frozen=True)
class PaperValue:
    value: float  # ACC x100 or GIoU, as published
    text: str  # the published spelling


def _parse_paper_table(text: str) -> dict[tuple[str, str], dict[str, PaperValue]]:
    keys = metric_keys()
    table: dict[tuple[str, str], dict[str, PaperValue]] = {}
    for lineno, line in enumerate(text.splitlines()[2:], start=3):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        model_name, method_name = (part.strip() for part in cells[0].split(",", 1))
        numbers = [part.strip() for cell in cells[1:] for part in cell.split("/")]
        if len(numbers) != len(keys):
            raise ValueError(f"PAPER_TABLE1_MARKDOWN line {lineno}: {len(numbers)} numbers, expected {len(keys)}")
        row_key = (PAPER_MODEL_NAMES[model_name], PAPER_METHOD_NAMES[method_name])
        table[row_key] = {k: PaperValue(float(n), n) for k, n in zip(keys, numbers, strict=True)}
    return table


PAPER_TABLE1: dict[tuple[str, str], dict[str, PaperValue]] = _parse_paper_table(PAPER_TABLE1_MARKDOWN)


def model_title(model: str) -> str:
    return MODEL_TITLES.get(model, model)


def method_title(method: str) -> str:
    return METHOD_TITLES.get(method, method)
