"""The registry of reward terms, their option schemas, and the context a term receives.

A reward term is a pure function ``fn(completions, rows, ctx, **options) -> list[float]`` (one finite
float per completion), registered under a short name with `@reward_term("name", options=Schema)`.
`Schema` is a frozen dataclass whose fields are the term's options with their defaults;
`parse_options` turns the ``reward.options.<term>`` mapping into it, raising `RewardOptionError`
that names ``reward.options.<term>.<key>`` for an unknown key, a wrong type or a value outside the
field's ``choices``. A term that needs the answer judge also registers a request builder; the batch
driver (`total.compute_rewards`) then sends the requests of all such terms to the judge in one call
and hands the results back through `RewardContext.judge_results`.

This module is light (no torch, no judge import) and imports no term module: each term module imports
it and registers its terms; the package's `__init__` imports the term modules once, so any import of
`grit_exp.rewards...` (this module included) sees the dict complete.

Left out: the terms themselves (`format_terms.py`, `answer_terms.py`, `tool_use.py`) and the weighted total
(`total.py`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

DEFAULT_COUNTING_DATASETS = ("tallyqa", "synth_count")  # = RewardConfig.counting_datasets' default


@dataclass
class RewardContext:
    """What terms may need beyond the completions and rows; all per-completion lists are aligned."""

    # the full user text (question + suffix) per completion: what the judge sees as {question}
    prompts: list[str] | None = None
    # completion token ids per completion, for the token repetition score
    token_ids: list[list[int]] | None = None
    # a grit_exp.judge Judge (duck-typed: `.score(list[JudgeRequest]) -> list[JudgeResult]`)
    judge: Any | None = None
    # datasets whose rows are counting questions (exact names), decided per row
    counting_datasets: list[str] = field(default_factory=lambda: list(DEFAULT_COUNTING_DATASETS))
    # term name -> one JudgeResult (or None: not asked) per completion; filled by compute_rewards so
    # the judge is called once per batch. A judge term called alone asks the judge itself.
    judge_results: dict[str, list[Any]] = field(default_factory=dict)
    # zoom turns (rollout.zoom.enabled): per completion, its grit_exp.rollout.zoom.calls.ZoomCall records in
    # turn order ([] when it made none); None when zoom is off (the tool-use terms then score 0)
    zoom_calls: list[list[Any]] | None = None
    # rollout.zoom.max_turns (None when zoom is off): `turn_penalty` counts the calls past it
    zoom_max_turns: int | None = None


TermFn = Callable[..., list[float]]
JudgeRequestFn = Callable[..., list[Any]]

REWARD_TERMS: dict[str, TermFn] = {}
TERM_OPTIONS: dict[str, type] = {}  # term name -> its options dataclass
JUDGE_REQUEST_BUILDERS: dict[str, JudgeRequestFn] = {}  # judge terms only


class RewardOptionError(ValueError):
    """A reward.options.<term>.<key> is unknown or has an invalid value; the message names it."""


def reward_term(
    name: str, options: type, judge_requests: JudgeRequestFn | None = None
) -> Callable[[TermFn], TermFn]:
    """Register `fn` as reward term `name` with its options dataclass (and judge request builder)."""
    if not dataclasses.is_dataclass(options):
        raise TypeError(f"reward term {name!r}: options must be a dataclass, got {options!r}")

    def register(fn: TermFn) -> TermFn:
        if name in REWARD_TERMS and REWARD_TERMS[name] is not fn:
            raise ValueError(f"reward term {name!r} is registered twice ({REWARD_TERMS[name]} and {fn})")
        REWARD_TERMS[name] = fn
        TERM_OPTIONS[name] = options
        if judge_requests is not None:
            JUDGE_REQUEST_BUILDERS[name] = judge_requests
        return fn

    return register


T = TypeVar("T")


def _type_ok(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, hint)


def parse_options(term: str, schema: type[T], options: Mapping[str, Any]) -> T:
    """`options` checked against the term's dataclass: unknown keys, types and `choices` metadata."""
    hints = typing.get_type_hints(schema)
    valid = {f.name: f for f in dataclasses.fields(schema)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in options.items():
        where = f"reward.options.{term}.{key}"
        if key not in valid:
            raise RewardOptionError(
                f"{where} is not an option of reward term {term!r}; valid options: {', '.join(sorted(valid))}"
            )
        if not _type_ok(value, hints[key]):
            raise RewardOptionError(f"{where}={value!r} has the wrong type; expected {hints[key]}")
        choices = valid[key].metadata.get("choices")
        if choices is not None and value not in choices:
            raise RewardOptionError(
                f"{where}={value!r} is not valid; choose one of {', '.join(map(repr, choices))}"
            )
        if hints[key] is float:
            value = float(value)
        values[key] = value
    return schema(**values)


def check_term_options(term: str, options: Mapping[str, Any]) -> None:
    """Validate ``reward.options.<term>`` without computing anything (for config validation)."""
    if term not in REWARD_TERMS:
        raise RewardOptionError(
            f"reward term {term!r} is unknown; registered terms: {', '.join(sorted(REWARD_TERMS))}"
        )
    parse_options(term, TERM_OPTIONS[term], options)

