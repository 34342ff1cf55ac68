"""Structure terms: answer format, think/rethink format, box format, box count, repetition, paper format.

Released-code terms (preset `grit_code`; every quirk is an option, defaults = released values):

- `answer_format`: (1 if ``<answer>`` occurs, +1 if exactly once) / 2 x value.
- `think_format`: ``<think>``, ``</think>``, ``<rethink>``, ``</rethink>`` searched in sequence, each
  after the previous one (after its LAST occurrence, `search_from: last`, as released): +1 each; with
  all four, +1 when the think content (after the last ``<think>``, before the next ``</think>``,
  stripped) has at least `min_think_chars` characters and, after non-alphanumerics become spaces,
  at least `min_think_words` pieces when split on single spaces (`word_split: single_space`, so
  "ok!" is 2 pieces and "a\\nb" is 1); total / 5 x value.
- `box_format`: 0 without ``<rethink>`` (`require_rethink`); else `value` when the box regex matches
  at least once in the text before the first ``<rethink>``.
- `count`: on counting rows only (``row.dataset`` exactly in `ctx.counting_datasets`, decided PER
  ROW - the released code read the first row of the device batch), `value` when the number of box
  matches before the first ``<rethink>`` equals ``int(row.answer)`` (0 boxes and answer "0" count);
  0 without ``<rethink>`` when `require_rethink`. A counting row whose answer is not an integer raises.
- `repetition`: 8-gram repetition of words and of token ids; see `repetition`.

Paper term (preset `grit_paper`): `format` = s_st + s_bf: `think_pair` if a ``<think>`` is followed
later by ``</think>``, `rethink_pair` likewise, `box` if a box matches before the first
``<rethink>`` (the whole text when there is none). The paper's r_count is `count` with
`value: 0.5, require_rethink: false`.

`parser: paper` counts matches of the paper regex (integers, no brackets needed); `parser:
structured` counts `grounding.parse_boxes` boxes (brackets, bbox_2d, InternVL <box>, decimals).

Left out: the answer terms (`answer_terms.py`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from grit_exp.data.schema import GritRow
from grit_exp.grounding.boxes import count_paper_boxes, parse_boxes
from grit_exp.rewards.registry import RewardContext, parse_options, reward_term

log = logging.getLogger(__name__)

PARSERS = ("paper", "structured")
_NON_ALNUM = re.compile(r"[^a-zA-Z0-9\s]")
_INTEGER = re.compile(r"[+-]?\d+")
_warned_no_token_ids = False


def _count_boxes(text: str, parser: str) -> int:
    return count_paper_boxes(text) if parser == "paper" else len(parse_boxes(text))


def _before_rethink(text: str, require_rethink: bool) -> str | None:
    """Text before the first <rethink>; None when there is none and one is required."""
    if "<rethink>" in text:
        return text.split("<rethink>", 1)[0]
    return None if require_rethink else text


# ------------------------------------------------------------------------------------ answer_format


@dataclass(frozen=True)
class AnswerFormatOptions:
    value: float = 0.5  # reward when <answer> occurs exactly once; half of it when it occurs more often


@reward_term("answer_format", options=AnswerFormatOptions)
def answer_format(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("answer_format", AnswerFormatOptions, options)
    out = []
    for text in completions:
        occurrences = text.count("<answer>")
        points = (1.0 if occurrences >= 1 else 0.0) + (1.0 if occurrences == 1 else 0.0)
        out.append(points / 2 * opt.value)
    return out


# ------------------------------------------------------------------------------------ think_format


@dataclass(frozen=True)
class ThinkFormatOptions:
    value: float = 0.5  # reward with all four tags in sequence and a think content of 2+ words
    search_from: str = field(default="last", metadata={"choices": ("last", "first")})
    min_think_chars: int = 2  # released: stripped think content longer than 1 character
    min_think_words: int = 2  # released: more than 1 piece
    word_split: str = field(default="single_space", metadata={"choices": ("single_space", "whitespace")})


_THINK_KEYS = ("<think>", "</think>", "<rethink>", "</rethink>")


@reward_term("think_format", options=ThinkFormatOptions)
def think_format(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("think_format", ThinkFormatOptions, options)
    out = []
    for text in completions:
        points = 0.0
        rest = text
        for key in _THINK_KEYS:
            if key in rest:
                points += 1.0
                rest = rest.split(key)[-1] if opt.search_from == "last" else rest.split(key, 1)[1]
        if points == len(_THINK_KEYS):
            content = text.split("<think>")[-1].split("</think>")[0].strip()
            if len(content) >= opt.min_think_chars:
                content = _NON_ALNUM.sub(" ", content)
                pieces = content.split(" ") if opt.word_split == "single_space" else content.split()
                if len(pieces) >= opt.min_think_words:
                    points += 1.0
        out.append(points / (len(_THINK_KEYS) + 1) * opt.value)
    return out


# ------------------------------------------------------------------------------------ box_format


@dataclass(frozen=True)
class BoxFormatOptions:
    value: float = 0.5  # reward when at least one box is written before the first <rethink>
    require_rethink: bool = True  # released: 0 without <rethink>; false: the whole text is searched
    parser: str = field(default="paper", metadata={"choices": PARSERS})


@reward_term("box_format", options=BoxFormatOptions)
def box_format(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("box_format", BoxFormatOptions, options)
    out = []
    for text in completions:
        region = _before_rethink(text, opt.require_rethink)
        out.append(opt.value if region is not None and _count_boxes(region, opt.parser) > 0 else 0.0)
    return out


# ------------------------------------------------------------------------------------ count


@dataclass(frozen=True)
class CountOptions:
    value: float = 1.0  # reward on counting rows when the number of boxes equals int(answer)
    require_rethink: bool = True  # released: 0 without <rethink>; false: count in the whole text
    parser: str = field(default="paper", metadata={"choices": PARSERS})


def ground_truth_count(row: GritRow) -> int | None:
    """int(row.answer) as the released code computes it; None for an integer too long to be a count."""
    answer = row.answer.strip()
    if not _INTEGER.fullmatch(answer):
        raise ValueError(
            f"reward term count: counting row {row.source or row.image} (dataset {row.dataset!r}) has the "
            f"answer {row.answer!r}, which is not an integer; fix the row or remove {row.dataset!r} from "
            "reward.counting_datasets"
        )
    digits = answer.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 18:
        return None  # no completion holds 10^18 boxes (and int() refuses > 4300 digits)
    return int(answer)


@reward_term("count", options=CountOptions)
def count(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("count", CountOptions, options)
    counting = set(ctx.counting_datasets)
    out = []
    for text, row in zip(completions, rows, strict=True):
        if row.dataset not in counting:
            out.append(0.0)
            continue
        expected = ground_truth_count(row)
        region = _before_rethink(text, opt.require_rethink)
        hit = region is not None and expected is not None and _count_boxes(region, opt.parser) == expected
        out.append(opt.value if hit else 0.0)
    return out


# ------------------------------------------------------------------------------------ paper format


@dataclass(frozen=True)
class PaperFormatOptions:
    think_pair: float = 0.5  # a <think> followed later by </think>
    rethink_pair: float = 0.5  # a <rethink> followed later by </rethink>
    box: float = 0.5  # a box before the first <rethink> (the whole text without one)
    box_require_rethink: bool = False
    parser: str = field(default="paper", metadata={"choices": PARSERS})


def _has_pair(text: str, opening: str, closing: str) -> bool:
    start = text.find(opening)
    return start >= 0 and text.find(closing, start + len(opening)) >= 0


@reward_term("format", options=PaperFormatOptions)
def paper_format(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    opt = parse_options("format", PaperFormatOptions, options)
    out = []
    for text in completions:
        score = opt.think_pair if _has_pair(text, "<think>", "</think>") else 0.0
        score += opt.rethink_pair if _has_pair(text, "<rethink>", "</rethink>") else 0.0
        region = _before_rethink(text, opt.box_require_rethink)
        score += opt.box if region is not None and _count_boxes(region, opt.parser) > 0 else 0.0
        out.append(score)
    return out


# ------------------------------------------------------------------------------------ repetition


@dataclass(frozen=True)
class RepetitionOptions:
    value: float = 0.5  # scale; the term lies in [-value, value]
    ngram: int = 8
    # drop token ids from the first occurrence of this id on (released: Qwen's pad <|endoftext|>)
    truncate_at_token_id: int | None = 151643
    # released: the last ngram-1 word windows (whose next n-gram is cut short) count as non-repeats
    count_partial_word_pairs: bool = True
    # released: fewer than 2 x ngram token ids gives the full value, whatever the word score
    short_token_ids_full_value: bool = True
    # without ctx.token_ids: "words_only" scores value x word_score (token score taken as 1); "raise"
    without_token_ids: str = field(default="words_only", metadata={"choices": ("words_only", "raise")})


def _adjacent_repeats(seq: list, n: int, full_pairs_only: bool) -> float:
    """1 - (windows equal to the next window) / windows."""
    positions = len(seq) - 2 * n + 1 if full_pairs_only else len(seq) - n
    if positions <= 0:
        return 1.0
    repeats = sum(1 for i in range(positions) if seq[i : i + n] == seq[i + n : i + 2 * n])
    return 1.0 - repeats / positions


@reward_term("repetition", options=RepetitionOptions)
def repetition(completions: list[str], rows: list[GritRow], ctx: RewardContext, **options) -> list[float]:
    """(token_score - (1 - word_score)) x value: value when not repetitive, can go down to -value."""
    global _warned_no_token_ids
    opt = parse_options("repetition", RepetitionOptions, options)
    if opt.ngram < 1:
        raise ValueError(f"reward.options.repetition.ngram={opt.ngram} must be >= 1")
    if ctx.token_ids is None:
        if opt.without_token_ids == "raise":
            raise ValueError(
                "reward term repetition needs RewardContext.token_ids (reward.options.repetition."
                "without_token_ids=raise)"
            )
        if not _warned_no_token_ids:
            log.warning("repetition: no token ids given; scoring words only (value x word score)")
            _warned_no_token_ids = True
    out = []
    for i, text in enumerate(completions):
        words = text.split()
        if len(words) < opt.ngram:
            out.append(opt.value)
            continue
        word_score = _adjacent_repeats(words, opt.ngram, full_pairs_only=not opt.count_partial_word_pairs)
        if ctx.token_ids is None:
            out.append(word_score * opt.value)
            continue
        ids = list(ctx.token_ids[i])
        if opt.truncate_at_token_id is not None and opt.truncate_at_token_id in ids:
            ids = ids[: ids.index(opt.truncate_at_token_id)]
        if len(ids) < 2 * opt.ngram and opt.short_token_ids_full_value:
            out.append(opt.value)
            continue
        token_score = _adjacent_repeats(ids, opt.ngram, full_pairs_only=True)
        out.append((token_score - (1.0 - word_score)) * opt.value)
    return out
