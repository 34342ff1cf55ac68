"""The one OpenAI-compatible Chat Completions loop of the answer judge and the vision judge.

`ChatClient` holds one endpoint's settings (OpenAI, Azure OpenAI with `api_type=azure`, or any
compatible `base_url`), builds the openai client on the caller's event loop (aiohttp transport, the
client's own retries: timeouts, dropped connections, HTTP 408 / 409 / 429 / 5xx with its backoff and
Retry-After), and asks: `ask_all` sends request bodies with at most `concurrency` in flight; a 2xx
reply that is not a chat completion, or whose text `parse` cannot read, is asked again, at most
`max_retries` times; then the answer is a failure (`Asked.value is None`, with the last error), never
a guess. HTTP 401 / 403 / 404 raise `JudgeConfigError` at once: every request would fail. The judge's
`JudgeStats` count every HTTP request (the client's retries included, through the HTTP client's
request hook), retries, token usage, malformed replies and failures. `endpoint_of(judge_cfg)` reads
the key from the environment (`judge.factory`, through `grit_exp.api_keys`) and Azure's endpoint and
version from theirs.

Requests go through the client's generic `post("/chat/completions", cast_to=object)` (its documented
way to send custom requests): same URL building (Azure deployments included), auth and error types
as `chat.completions.create`, without building typed request/response models, which cost ~30% of
the client's CPU time per request at high concurrency (measured with the benchmark).

Left out: what is asked and how a reply is read (`openai_judge.py`, `vision.py`), caching, the
event loop's lifetime (the answer judge keeps one in a thread; the vision judge runs one per call).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import openai

from grit_exp.api_keys import SecretStr, check_api_key_setting, raw_api_key, redact, register_secret
from grit_exp.errors import JudgeConfigError
from grit_exp.judge.base import JudgeStats

logger = logging.getLogger(__name__)

CONFIGURATION_STATUS = (401, 403, 404)
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"

T = TypeVar("T")


def effective_base_url(base_url: str | None, api_type: str) -> str:
    """The endpoint the client will call: judge.base_url, else what the client itself would use."""
    if base_url:
        return base_url
    if api_type == "azure":
        return os.environ.get("AZURE_OPENAI_ENDPOINT", "")
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL


def api_key_from_environment(cfg: Any) -> SecretStr:
    variable = check_api_key_setting(raw_api_key(cfg)) or (
        "AZURE_OPENAI_API_KEY" if cfg.api_type == "azure" else "OPENAI_API_KEY"
    )
    value = os.environ.get(variable)
    if not value:
        raise JudgeConfigError(
            f"judge.kind=openai needs an API key in the environment variable {variable}, which is unset or "
            "empty. Export it (a local server without authentication accepts any value, e.g. "
            f"{variable}=EMPTY), or use judge=rules for the offline judge."
        )
    register_secret(value)
    return SecretStr(value)


def endpoint_of(cfg: Any) -> tuple[SecretStr, str | None, str | None]:
    """(API key, base URL, API version) of a `judge` config node: the key from the environment
    variable the config names; for Azure, the endpoint and version from the environment when unset."""
    api_key = api_key_from_environment(cfg)
    base_url, api_version = cfg.base_url, cfg.api_version
    if cfg.api_type == "azure":
        base_url = base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        api_version = api_version or os.environ.get("OPENAI_API_VERSION")
    return api_key, base_url, api_version


class NotAChatCompletion(Exception):
    """A 2xx body that is not a chat completion (e.g. an HTML page from a proxy)."""


@dataclass
class Asked(Generic[T]):
    value: T | None  # what `parse` read from the reply; None when the answer failed
    raw: str | None  # the last reply's text
    error: str | None  # why it failed; None on success


class ChatClient:
    """One endpoint, its openai client (built on the caller's event loop) and the ask-again loop."""

    def __init__(
        self,
        *,
        role: str,  # "judge" / "vision judge": names the endpoint in a configuration error
        model: str,
        api_key: SecretStr,
        base_url: str | None,
        api_type: str,
        api_version: str | None,
        concurrency: int,
        timeout_s: float,
        max_retries: int,
        stats: JudgeStats,
    ) -> None:
        if api_type not in ("openai", "azure"):
            raise JudgeConfigError(f"judge.api_type={api_type!r} is not valid; choose 'openai' or 'azure'")
        if api_type == "azure" and (not base_url or not api_version):
            raise JudgeConfigError(
                "judge.api_type=azure needs an endpoint (judge.base_url or AZURE_OPENAI_ENDPOINT) and an "
                "API version (judge.api_version or OPENAI_API_VERSION)"
            )
        self.role, self.model, self.base_url = role, model, base_url
        self.api_type, self.api_version = api_type, api_version
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, max_retries
        self.name = f"{api_type}:{model}"
        self.stats = stats
        self._api_key = api_key
        self._prompts_sent = 0  # first requests; stats.retries = stats.requests - this
        self.client: openai.AsyncOpenAI | None = None

    # -- the openai client -----------------------------------------------------------------------

    async def _count_request(self, request: Any) -> None:
        self.stats.requests += 1  # every HTTP request, the client's own retries included

    def open(self) -> openai.AsyncOpenAI:
        """The openai client, built on first use; call it on the event loop that will use it."""
        if self.client is None:
            common: dict[str, Any] = {
                "api_key": self._api_key.get_secret_value(),
                "max_retries": self.max_retries,  # the client retries timeouts, drops, 408/409/429/5xx (Retry-After)
                "timeout": self.timeout_s,
                # aiohttp transport: about half the client CPU per request of the default httpx one,
                # which is what bounds throughput at high concurrency (benchmarks/README.md)
                "http_client": openai.DefaultAioHttpClient(
                    timeout=self.timeout_s, event_hooks={"request": [self._count_request]}
                ),
            }
            if self.api_type == "azure":
                self.client = openai.AsyncAzureOpenAI(
                    azure_endpoint=self.base_url, api_version=self.api_version, **common
                )
            else:
                self.client = openai.AsyncOpenAI(base_url=self.base_url, **common)
        return self.client

    async def aclose(self) -> None:
        """Close the openai client (on its event loop); a later `ask_all` builds a new one."""
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    # -- asking ----------------------------------------------------------------------------------

    def body(self, content: str | list[dict[str, Any]], temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
        """A Chat Completions request body: one user message. A None temperature / max_tokens is not sent
        (the API's default applies, as in the released GRIT judge call)."""
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return body

    async def ask_all(
        self,
        bodies: list[dict[str, Any]],
        parse: Callable[[int, str | None], T | None],
        *,
        malformed: str,
        failure: str,
        on_value: Callable[[int, T, str | None], None] | None = None,
    ) -> list[Asked[T]]:
        """Send every body, at most `concurrency` in flight; `parse(i, text)` reads reply i (None: malformed,
        asked again), `on_value(i, value, raw)` runs as soon as answer i succeeds. `malformed` says what a
        malformed reply lacks, `failure` names what failed (both for messages)."""
        client = self.open()
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks = [
            asyncio.create_task(self._ask(client, semaphore, i, body, parse, malformed, failure, on_value))
            for i, body in enumerate(bodies)
        ]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _ask(
        self,
        client: openai.AsyncOpenAI,
        semaphore: asyncio.Semaphore,
        index: int,
        body: dict[str, Any],
        parse: Callable[[int, str | None], T | None],
        malformed: str,
        failure: str,
        on_value: Callable[[int, T, str | None], None] | None,
    ) -> Asked[T]:
        """One answer: the client retries HTTP failures; a reply it cannot read is asked again here."""
        last_error = "not sent"
        last_raw: str | None = None
        self._prompts_sent += 1
        for attempt in range(self.max_retries + 1):  # re-asks after a non-chat body or a malformed reply
            try:
                async with semaphore:
                    reply = await client.post("/chat/completions", body=body, cast_to=object)
            except openai.APITimeoutError:
                last_error = f"timed out after {self.timeout_s} s ({self.max_retries} retries)"
                break
            except openai.APIConnectionError as error:
                last_error = f"connection error: {redact(str(error.__cause__ or error))} ({self.max_retries} retries)"
                break
            except openai.APIStatusError as error:
                if error.status_code in CONFIGURATION_STATUS:
                    raise JudgeConfigError(
                        f"{self.role} endpoint {self.base_url or 'default'} answered HTTP {error.status_code} for "
                        f"model {self.model!r}: {redact(error.message)}. Check judge.base_url, judge.model, "
                        "judge.api_type and the key in the environment."
                    ) from None
                last_error = f"HTTP {error.status_code}: {redact(error.message)[:200]}"
                break  # retryable statuses were retried by the client; others (e.g. 400) will not change
            except openai.APIResponseValidationError as error:
                last_error = f"invalid response body: {redact(error.message)[:200]}"
            except json.JSONDecodeError as error:
                last_error = f"response body is not JSON: {error}"
            else:
                try:
                    last_raw = self._reply_content(reply)
                except NotAChatCompletion as error:
                    last_error = str(error)
                else:
                    value = parse(index, last_raw)
                    if value is not None:
                        if on_value is not None:
                            on_value(index, value, last_raw)
                        self._update_retries()
                        return Asked(value, last_raw, None)
                    self.stats.malformed += 1
                    last_error = f"malformed reply ({malformed}): {(last_raw or '')[:200]!r}"
            if attempt < self.max_retries:
                logger.debug("%s: %s; asking again (%d)", self.name, last_error, attempt + 1)
        self._update_retries()
        self.stats.failures += 1
        logger.warning("%s: %s failed: %s", self.name, failure, last_error)
        return Asked(None, last_raw, last_error)

    def _update_retries(self) -> None:
        self.stats.retries = self.stats.requests - self._prompts_sent

    def _reply_content(self, reply: object) -> str | None:
        """The reply's text (None if it has none) after counting its token usage."""
        if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list):
            raise NotAChatCompletion(f"response is not a chat completion: {redact(str(reply))[:200]!r}")
        usage = reply.get("usage")
        if isinstance(usage, dict):
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
        choices = reply["choices"]
        message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else None
