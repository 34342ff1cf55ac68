"""The vision judge of the paper's reasoning-grounding consistency metric: "which image matches?".

A `VisionChoiceRequest` holds a text and PNG images; the judge (a vision model behind any
OpenAI-compatible Chat Completions endpoint, configured by the same `judge` group as the answer
judge) replies "Image 0" or "Image 1". `parse_image_choice` reads the reply: exactly one distinct
"Image <k>" with k < number of images, else malformed (asked again, then a failure). The message
holds the images first, in order (Image 0, Image 1, ...), then the text: the paper's prompt names
them only by their position.

Failures follow the answer judge's rules: the openai client retries timeouts, dropped connections,
HTTP 408 / 409 / 429 / 5xx (`max_retries`, Retry-After honoured); non-chat bodies and malformed
replies are asked again here (at most `max_retries` times); then the result is `failed=True,
choice=None`, never a guess. HTTP 401 / 403 / 404 raise `JudgeConfigError` at once.

`build_vision_judge(judge_cfg)` returns None for `judge.kind=rules`: an offline rules judge cannot
look at images, and the metric is then reported as unavailable.

Left out: caching (the requests carry images; verdicts are cheap to recompute only in tests),
drawing the images and the metric itself (`grit_exp.evaluation.consistency`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from grit_exp.judge.base import JudgeConfigError, JudgeStats

logger = logging.getLogger(__name__)

# The paper's consistency prompt, verbatim (grit.md section 5); {reasoning} has its coordinates removed.
CONSISTENCY_PROMPT_HEAD = "Please decide which image has the bounding boxes that match the following description: "
CONSISTENCY_PROMPT_TAIL = '\nReply with exactly "Image 0" or "Image 1".'

_CHOICE = re.compile(r"\bimage\s*([0-9]+)\b", re.IGNORECASE)
_CONFIGURATION_STATUS = (401, 403, 404)


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
        api_key: Any,  # grit_exp.api_keys.SecretStr
        base_url: str | None = None,
        api_type: str = "openai",
        api_version: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        temperature: float = 0.0,
        max_tokens: int = 16,
    ) -> None:
        if api_type == "azure" and (not base_url or not api_version):
            raise JudgeConfigError(
                "judge.api_type=azure needs an endpoint (judge.base_url or AZURE_OPENAI_ENDPOINT) and an "
                "API version (judge.api_version or OPENAI_API_VERSION)"
            )
        self.model, self.base_url, self.api_type, self.api_version = model, base_url, api_type, api_version
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.temperature, self.max_tokens = temperature, max_tokens
        self.name = f"{api_type}:{model}"
        self.stats = JudgeStats()
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"OpenAIVisionJudge(name={self.name!r}, base_url={self.base_url!r}, max_retries={self.max_retries})"

    def choose(self, requests: list[VisionChoiceRequest]) -> list[VisionChoiceResult]:
        """One result per request, in order (runs its own event loop; call it from synchronous code)."""
        if not requests:
            return []
        self.stats.answers += len(requests)
        return asyncio.run(self._choose_all(requests))

    def _client(self) -> Any:
        import openai

        common: dict[str, Any] = {
            "api_key": self._api_key.get_secret_value(),
            "max_retries": self.max_retries,  # the client retries timeouts, drops, 408/409/429/5xx
            "timeout": self.timeout_s,
        }
        if self.api_type == "azure":
            return openai.AsyncAzureOpenAI(azure_endpoint=self.base_url, api_version=self.api_version, **common)
        return openai.AsyncOpenAI(base_url=self.base_url, **common)

    async def _choose_all(self, requests: list[VisionChoiceRequest]) -> list[VisionChoiceResult]:
        client = self._client()
        semaphore = asyncio.Semaphore(self.concurrency)
        try:
            return list(await asyncio.gather(*(self._choose_one(client, semaphore, r) for r in requests)))
        finally:
            await client.close()

    async def _choose_one(self, client: Any, semaphore: asyncio.Semaphore, request: VisionChoiceRequest) -> VisionChoiceResult:
        import openai

        from grit_exp.api_keys import redact

        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": image_message(request)}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        last_error, last_raw = "not sent", None
        for attempt in range(self.max_retries + 1):  # re-asks after an invalid body or a malformed reply
            if attempt:
                self.stats.retries += 1
            try:
                async with semaphore:
                    self.stats.requests += 1
                    reply = await client.post("/chat/completions", body=body, cast_to=object)
            except openai.APITimeoutError:
                last_error = f"timed out after {self.timeout_s} s ({self.max_retries} retries)"
                break
            except openai.APIConnectionError as error:
                last_error = f"connection error: {redact(str(error.__cause__ or error))} ({self.max_retries} retries)"
                break
            except openai.APIStatusError as error:
                if error.status_code in _CONFIGURATION_STATUS:
                    raise JudgeConfigError(
                        f"vision judge endpoint {self.base_url or 'default'} answered HTTP {error.status_code} for "
                        f"model {self.model!r}: {redact(error.message)}. Check judge.base_url, judge.model and the key."
                    ) from None
                last_error = f"HTTP {error.status_code}: {redact(error.message)[:200]}"
                break  # retryable statuses were retried by the client
            except (openai.APIResponseValidationError, json.JSONDecodeError) as error:
                last_error = f"invalid response body: {redact(str(error))[:200]}"
            else:
                last_raw = _reply_text(reply)
                choice = parse_image_choice(last_raw, len(request.images))
                if choice is not None:
                    return VisionChoiceResult(choice=choice, raw=last_raw, failed=False)
                self.stats.malformed += 1
                last_error = f"malformed reply (no single 'Image k'): {(last_raw or '')[:200]!r}"
        self.stats.failures += 1
        logger.warning("%s: image choice failed: %s", self.name, last_error)
        return VisionChoiceResult(choice=None, raw=last_raw, failed=True, error=last_error)


def _reply_text(reply: object) -> str | None:
    if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list) or not reply["choices"]:
        return None
    message = reply["choices"][0].get("message") if isinstance(reply["choices"][0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def build_vision_judge(cfg: Any) -> OpenAIVisionJudge | None:
    """The vision judge of a `judge` config node; None for judge.kind=rules (it cannot see images)."""
    from grit_exp.judge.factory import _api_key_from_environment, validate_judge_config

    validate_judge_config(cfg)
    if cfg.kind == "rules":
        return None
    import os

    base_url, api_version = cfg.base_url, cfg.api_version
    if cfg.api_type == "azure":
        base_url = base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        api_version = api_version or os.environ.get("OPENAI_API_VERSION")
    return OpenAIVisionJudge(
        model=cfg.model,
        api_key=_api_key_from_environment(cfg),
        base_url=base_url,
        api_type=cfg.api_type,
        api_version=api_version,
        concurrency=min(int(cfg.concurrency), 8),  # each request carries two images
        timeout_s=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_tokens=16,
    )
