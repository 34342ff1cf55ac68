"""The vision judge of the paper's reasoning-grounding consistency metric: "which image matches?".

A `VisionChoiceRequest` holds a text and PNG images; the judge (a vision model behind any
OpenAI-compatible Chat Completions endpoint, configured by the same `judge` group as the answer
judge) replies "Image 0" or "Image 1". `parse_image_choice` reads the reply: exactly one distinct
"Image <k>" with k < number of images, else malformed (asked again, then a failure). The message
holds the images first, in order (Image 0, Image 1, ...), then the text: the paper's prompt names
them only by their position.

Requests go through the answer judge's client loop (`judge/openai_client.py`'s `ChatClient`): the
openai client retries timeouts, dropped connections, HTTP 408 / 409 / 429 / 5xx (`max_retries`,
Retry-After honoured); non-chat bodies and malformed replies are asked again (at most `max_retries`
times); then the result is `failed=True, choice=None`, never a guess. HTTP 401 / 403 / 404 raise
`JudgeConfigError` at once. `choose` runs its own event loop per call.

`build_vision_judge(judge_cfg)` returns None for `judge.kind=rules`: an offline rules judge cannot
look at images, and the metric is then reported as unavailable.

Left out: caching (the requests carry images; verdicts are cheap to recompute only in tests),
drawing the images and the metric itself (`grit_exp.evaluation.consistency`).
"""

from __future__ import annotations

import asyncio
import base64
import re
from dataclasses import dataclass
from typing import Any

from grit_exp.api_keys import SecretStr
from grit_exp.judge.base import JudgeStats
from grit_exp.judge.openai_client import ChatClient, endpoint_of

# The paper's consistency prompt, verbatim (grit.md section 5); {reasoning} has its coordinates removed.
CONSISTENCY_PROMPT_HEAD = "Please decide which image has the bounding boxes that match the following description: "
CONSISTENCY_PROMPT_TAIL = '\nReply with exactly "Image 0" or "Image 1".'

_CHOICE = re.compile(r"\bimage\s*([0-9]+)\b", re.IGNORECASE)


def consistency_prompt(reasoning: str) -> str:
    """The paper's prompt around `reasoning` (concatenation: the reasoning may hold braces)."""
    return CONSISTENCY_PROMPT_HEAD + reasoning + CONSISTENCY_PROMPT_TAIL


def reasoning_of_prompt(prompt: str) -> str | None:
    """Inverse of `consistency_prompt` (for the fake server); None if `prompt` is not one."""
    if not (prompt.startswith(CONSISTENCY_PROMPT_HEAD) and prompt.endswith(CONSISTENCY_PROMPT_TAIL)):
        return None
    return prompt[len(CONSISTENCY_PROMPT_HEAD) : len(prompt) - len(CONSISTENCY_PROMPT_TAIL)]


@dataclass(frozen=True)
class VisionChoiceRequest:
    text: str
    images: tuple[bytes, ...]  # PNG files, in the order the prompt numbers them (Image 0, Image 1, ...)


@dataclass
class VisionChoiceResult:
    choice: int | None  # index of the chosen image; None when failed
    raw: str | None  # the judge's reply text
    failed: bool
    error: str | None = None


def parse_image_choice(text: str | None, num_images: int) -> int | None:
    """The one image the reply names ("Image 1", "image 1.", "**Image 1**"); None if none, several
    different ones, or an index out of range."""
    if not text:
        return None
    named = {int(m.group(1)) for m in _CHOICE.finditer(text)}
    if len(named) != 1:
        return None
    (choice,) = named
    return choice if choice < num_images else None


def image_message(request: VisionChoiceRequest) -> list[dict[str, Any]]:
    """The user message content: the images as PNG data URLs, in order, then the text."""
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()}}
        for png in request.images
    ]
    parts.append({"type": "text", "text": request.text})
    return parts


class OpenAIVisionJudge:
    """Chooses between images with a vision model over Chat Completions; `choose` is synchronous."""

    def __init__(
        self,
        *,
        model: str,
        api_key: SecretStr,
        base_url: str | None = None,
        api_type: str = "openai",
        api_version: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        temperature: float | None = 0.0,  # None: not sent
        max_tokens: int = 16,
    ) -> None:
        self.stats = JudgeStats()
        self._chat = ChatClient(
            role="vision judge", model=model, api_key=api_key, base_url=base_url, api_type=api_type,
            api_version=api_version, concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries,
            stats=self.stats,
        )
        self.model, self.base_url, self.api_type, self.api_version = model, base_url, api_type, api_version
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.temperature, self.max_tokens = temperature, max_tokens
        self.name = f"{api_type}:{model}"

    def __repr__(self) -> str:
        return f"OpenAIVisionJudge(name={self.name!r}, base_url={self.base_url!r}, max_retries={self.max_retries})"

    def choose(self, requests: list[VisionChoiceRequest]) -> list[VisionChoiceResult]:
        """One result per request, in order (runs its own event loop; call it from synchronous code)."""
        if not requests:
            return []
        self.stats.answers += len(requests)
        return asyncio.run(self._choose_all(requests))

    async def _choose_all(self, requests: list[VisionChoiceRequest]) -> list[VisionChoiceResult]:
        bodies = [self._chat.body(image_message(r), self.temperature, self.max_tokens) for r in requests]
        try:
            asked = await self._chat.ask_all(
                bodies, lambda i, raw: parse_image_choice(raw, len(requests[i].images)),
                malformed="no single 'Image k'", failure="image choice",
            )
        finally:
            await self._chat.aclose()
        return [VisionChoiceResult(choice=a.value, raw=a.raw, failed=a.error is not None, error=a.error)
                for a in asked]


def build_vision_judge(cfg: Any) -> OpenAIVisionJudge | None:
    """The vision judge of a `judge` config node; None for judge.kind=rules (it cannot see images)."""
    from grit_exp.config.judge import check_judge

    check_judge(cfg)
    if cfg.kind == "rules":
        return None
    api_key, base_url, api_version = endpoint_of(cfg)
    return OpenAIVisionJudge(
        model=cfg.model,
        api_key=api_key,
        base_url=base_url,
        api_type=cfg.api_type,
        api_version=api_version,
        concurrency=min(int(cfg.concurrency), 8),  # each request carries two images
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_tokens=16,
    )
