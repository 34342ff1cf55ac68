"""The LLM answer judge over any OpenAI-compatible Chat Completions endpoint (`judge=openai`).

OpenAI, Azure OpenAI (`api_type=azure`) or a local vLLM / SGLang / ollama server (`base_url`).
Answers are judged concurrently, at most `concurrency` requests in flight, on an event loop that the
judge runs in its own daemon thread with one long-lived HTTP client (connections are reused across
calls); `score` is synchronous and works from any thread, `ascore` awaits it from async code.
Identical prompts of one call are sent once; cached verdicts are not sent at all.

Retries are ours (the library's own `max_retries` is 0): timeouts, dropped connections, HTTP 408 /
409 / 429 / 5xx and invalid bodies are retried with exponential backoff and jitter (a 429's
Retry-After / retry-after-ms is honoured); a reply without a score in [0, 1] is asked again.
After `max_retries` retries the answer is a failure (failed=True, score None), counted in `stats`
and not cached. HTTP 401 / 403 / 404 raise `JudgeConfigError` at once: every answer would fail.

Requests go through the client's generic `post("/chat/completions", cast_to=object)` (its documented
way to send custom requests): same URL building (Azure deployments included), auth and error types
as `chat.completions.create`, without building typed request/response models, which cost ~30% of
the client's CPU time per request at high concurrency (measured with the benchmark).

Left out: streaming, batch API, per-token cost accounting, the consistency (two-image) judge.
"""

from __future__ import annotations

import asyncio
import atexit
import email.utils
import json
import logging
import os
import random
import threading
import time
import weakref
from dataclasses import replace
from typing import Any

import openai

from grit_exp.judge.base import JudgeConfigError, JudgeRequest, JudgeResult, JudgeStats
from grit_exp.judge.cache import JudgeCache
from grit_exp.judge.prompt import build_judge_prompt, parse_score
from grit_exp.judge.secrets import SecretStr, redact

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = (408, 409)
_CONFIGURATION_STATUS = (401, 403, 404)
_MAX_RETRY_AFTER_S = 600.0


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _stop_loop_at_exit(judge_ref: weakref.ref[OpenAIJudge]) -> None:
    judge = judge_ref()
    if judge is not None:
        judge._stop_loop()


class _NotAChatCompletion(Exception):
    """A 2xx body that is not a chat completion (e.g. an HTML page from a proxy)."""


class OpenAIJudge:
    """GRIT answer judge over Chat Completions. Call `close()` when done (or let the process end)."""

    def __init__(
        self,
        *,
        model: str,
        api_key: SecretStr,
        base_url: str | None = None,
        api_type: str = "openai",
        api_version: str | None = None,
        concurrency: int = 32,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        temperature: float = 0.0,
        max_tokens: int = 64,
        cache: JudgeCache | None = None,
    ) -> None:
        if api_type not in ("openai", "azure"):
            raise JudgeConfigError(f"judge.api_type={api_type!r} is not valid; choose 'openai' or 'azure'")
        if api_type == "azure" and (not base_url or not api_version):
            raise JudgeConfigError(
                "judge.api_type=azure needs an endpoint (judge.base_url or AZURE_OPENAI_ENDPOINT) and an "
                "API version (judge.api_version or OPENAI_API_VERSION)"
            )
        self.model = model
        self.base_url = base_url
        self.api_type = api_type
        self.api_version = api_version
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.cache = cache
        self.name = f"{api_type}:{model}"
        self.stats = JudgeStats()
        self._api_key = api_key
        self._random = random.Random()
        self._warned_running_loop = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_pid: int | None = None
        self._client: openai.AsyncOpenAI | None = None

    def __repr__(self) -> str:
        return (
            f"OpenAIJudge(name={self.name!r}, base_url={self.base_url!r}, concurrency={self.concurrency}, "
            f"timeout_s={self.timeout_s}, max_retries={self.max_retries}, cache={self.cache!r})"
        )

    __str__ = __repr__

    # -- public ----------------------------------------------------------------------------------

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        """Judge all requests; blocks until done. Safe from any thread, also from inside a running
        event loop (that loop is blocked meanwhile: async code should `await judge.ascore(...)`)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            if not self._warned_running_loop:
                logger.warning(
                    "%s: score() called inside a running event loop blocks that loop until the answers are "
                    "judged; use `await judge.ascore(requests)` in async code",
                    self.name,
                )
                self._warned_running_loop = True
        future = asyncio.run_coroutine_threadsafe(self._score_on_loop(requests), self._judge_loop())
        try:
            return future.result()
        except BaseException:  # e.g. KeyboardInterrupt: stop the in-flight requests too
            future.cancel()
            raise

    async def ascore(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        """`score` for async callers: awaits without blocking the caller's loop."""
        future = asyncio.run_coroutine_threadsafe(self._score_on_loop(requests), self._judge_loop())
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Close the HTTP client, stop the judge's loop thread and close the cache."""
        self._stop_loop()
        if self.cache is not None:
            self.cache.close()

    def _stop_loop(self) -> None:
        """Close the HTTP client and stop the loop thread (a later `score` starts them again)."""
        loop, self._loop = self._loop, None
        if loop is not None and self._loop_pid == os.getpid():
            if self._client is not None:
                asyncio.run_coroutine_threadsafe(self._client.close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            loop.close()
        self._client = None

    # -- the judge's own event loop --------------------------------------------------------------

    def _judge_loop(self) -> asyncio.AbstractEventLoop:
        """The loop thread that owns the HTTP client, started on first use (and again after a fork).

        One long-lived client keeps its connections (and TLS sessions) across `score` calls; creating
        a client costs ~50 ms (its SSL context) and every new connection a handshake."""
        if self._loop is None or self._loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name=f"judge-loop-{self.name}", daemon=True)
            thread.start()
            self._loop, self._loop_thread, self._loop_pid, self._client = loop, thread, os.getpid(), None
            atexit.register(_stop_loop_at_exit, weakref.ref(self))  # close connections cleanly at exit
        return self._loop

    async def _score_on_loop(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        before = self.stats.as_dict()
        started = time.perf_counter()
        prompts = [build_judge_prompt(request) for request in requests]
        unique_prompts = list(dict.fromkeys(prompts))
        self.stats.answers += len(prompts)
        self.stats.deduplicated += len(prompts) - len(unique_prompts)

        verdicts: dict[str, JudgeResult] = {}
        if self.cache is not None:
            for prompt, (value, raw) in self.cache.get_many(self.model, unique_prompts).items():
                verdicts[prompt] = JudgeResult(score=value, raw=raw, failed=False, cached=True)
            self.stats.cache_hits += len(verdicts)
        to_send = [prompt for prompt in unique_prompts if prompt not in verdicts]
        if to_send:
            verdicts.update(zip(to_send, await self._send_all(to_send), strict=True))

        self._log_batch(before, time.perf_counter() - started)
        return [replace(verdicts[prompt]) for prompt in prompts]

    # -- sending ---------------------------------------------------------------------------------

    def _make_client(self) -> openai.AsyncOpenAI:
        common: dict[str, Any] = {
            "api_key": self._api_key.get_secret_value(),
            "max_retries": 0,  # retries are ours (backoff, Retry-After, malformed replies)
            "timeout": self.timeout_s,
            # aiohttp transport: about half the client CPU per request of the default httpx one,
            # which is what bounds throughput at high concurrency (benchmarks/README.md)
            "http_client": openai.DefaultAioHttpClient(timeout=self.timeout_s),
        }
        if self.api_type == "azure":
            return openai.AsyncAzureOpenAI(
                azure_endpoint=self.base_url, api_version=self.api_version, **common
            )
        return openai.AsyncOpenAI(base_url=self.base_url, **common)

    async def _send_all(self, prompts: list[str]) -> list[JudgeResult]:
        if self._client is None:
            self._client = self._make_client()
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks = [
            asyncio.create_task(self._judge_prompt(self._client, semaphore, prompt)) for prompt in prompts
        ]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def _backoff_s(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": uniform in [d/2, d], d = base * 2^attempt, capped."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        return self._random.uniform(ceiling / 2, ceiling)

    async def _judge_prompt(
        self, client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, prompt: str
    ) -> JudgeResult:
        last_error = "not sent"
        last_raw: str | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.stats.retries += 1
            wait_s: float | None = None  # None: exponential backoff
            try:
                async with semaphore:
                    self.stats.requests += 1
                    reply = await client.post("/chat/completions", body=self._body(prompt), cast_to=object)
            except openai.RateLimitError as error:
                last_error = "HTTP 429 (rate limited)"
                server_wait = retry_after_seconds(error.response.headers)
                if server_wait is not None:
                    wait_s = min(server_wait, _MAX_RETRY_AFTER_S) + self._random.uniform(
                        0, self.backoff_base_s
                    )
            except openai.APITimeoutError:
                last_error = f"timed out after {self.timeout_s} s"
            except openai.APIConnectionError as error:
                last_error = f"connection error: {redact(str(error.__cause__ or error))}"
            except openai.APIStatusError as error:
                if error.status_code in _CONFIGURATION_STATUS:
                    raise JudgeConfigError(
                        f"judge endpoint {self.base_url or 'default'} answered HTTP {error.status_code} for "
                        f"model {self.model!r}: {redact(error.message)}. Check judge.base_url, judge.model, "
                        "judge.api_type and the key in the environment."
                    ) from None
                last_error = f"HTTP {error.status_code}: {redact(error.message)[:200]}"
                if error.status_code < 500 and error.status_code not in _RETRYABLE_STATUS:
                    break  # e.g. 400 from a content filter: asking again will not help
            except openai.APIResponseValidationError as error:
                last_error = f"invalid response body: {redact(error.message)[:200]}"
            except json.JSONDecodeError as error:
                last_error = f"response body is not JSON: {error}"
            else:
                try:
                    last_raw = self._reply_content(reply)
                except _NotAChatCompletion as error:
                    last_error = str(error)
                    await self._sleep_before_retry(attempt, None, last_error)
                    continue
                value = parse_score(last_raw)
                if value is not None:
                    if self.cache is not None:
                        self.cache.put(self.model, prompt, value, last_raw or "")
                    return JudgeResult(score=value, raw=last_raw, failed=False)
                self.stats.malformed += 1
                last_error = f"malformed reply (no score in [0, 1]): {(last_raw or '')[:200]!r}"
                wait_s = 0.0  # not an overload: ask again at once
            await self._sleep_before_retry(attempt, wait_s, last_error)
        self.stats.failures += 1
        logger.warning("%s: judgement failed after %d attempt(s): %s", self.name, attempt + 1, last_error)
        return JudgeResult(score=None, raw=last_raw, failed=True, error=last_error)

    async def _sleep_before_retry(self, attempt: int, wait_s: float | None, reason: str) -> None:
        """Wait before the next attempt (none after the last): `wait_s`, or exponential backoff."""
        if attempt < self.max_retries:
            delay = self._backoff_s(attempt) if wait_s is None else wait_s
            logger.debug("%s: %s; retry %d in %.3f s", self.name, reason, attempt + 1, delay)
            await asyncio.sleep(delay)

    def _body(self, prompt: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _reply_content(self, reply: object) -> str | None:
        """The reply's text (None if it has none) after counting its token usage."""
        if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list):
            raise _NotAChatCompletion(f"response is not a chat completion: {redact(str(reply))[:200]!r}")
        usage = reply.get("usage")
        if isinstance(usage, dict):
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
        choices = reply["choices"]
        message = choices[0].get("message") if choices and isinstance(choices[0], dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        return content if isinstance(content, str) else None

    def _log_batch(self, before: dict[str, int], elapsed_s: float) -> None:
        now = self.stats.as_dict()
        delta = {key: now[key] - before[key] for key in now}
        logger.info(
            "%s judged %d answers in %.2f s: %d requests (%d retries), %d cache hits, %d failures; "
            "tokens %d prompt + %d completion (totals: %d requests, %d + %d tokens)",
            self.name,
            delta["answers"],
            elapsed_s,
            delta["requests"],
            delta["retries"],
            delta["cache_hits"],
            delta["failures"],
            delta["prompt_tokens"],
            delta["completion_tokens"],
            now["requests"],
            now["prompt_tokens"],
            now["completion_tokens"],
        )
