"""The LLM answer judge over any OpenAI-compatible Chat Completions endpoint (`judge=openai`).

OpenAI, Azure OpenAI (`api_type=azure`) or a local vLLM / SGLang / ollama server (`base_url`).
Answers are judged concurrently, at most `concurrency` requests in flight, on an event loop that the
judge runs in its own daemon thread with one long-lived HTTP client (connections are reused across
calls); `score` is synchronous and works from any thread, `ascore` awaits it from async code.
Identical prompts of one call are sent once; cached verdicts are not sent at all.

HTTP retries are the openai client's (`max_retries=judge.max_retries`): timeouts, dropped connections,
HTTP 408 / 409 / 429 / 5xx, with its exponential backoff and jitter, honouring Retry-After /
retry-after-ms. What the client cannot know is kept here: a 2xx reply that is not a chat completion
or carries no score in [0, 1] is asked again, at most `max_retries` times; and at most `concurrency`
requests are in flight. An answer still without a score is a failure (failed=True, score None),
counted in `stats` and not cached. HTTP 401 / 403 / 404 raise `JudgeConfigError` at once: every
answer would fail. `stats.requests` counts every HTTP request sent (the client's retries included,
through the HTTP client's request hook).

Verdicts are cached (judge/cache.py) under `verdict_key`: endpoint, API type and version, model or
deployment, temperature, max_tokens and the judge prompt version, so a verdict is reused only by a
judge that would give it.

Requests go through the client's generic `post("/chat/completions", cast_to=object)` (its documented
way to send custom requests): same URL building (Azure deployments included), auth and error types
as `chat.completions.create`, without building typed request/response models, which cost ~30% of
the client's CPU time per request at high concurrency (measured with the benchmark).

Left out: streaming, batch API, per-token cost accounting, the consistency (two-image) judge.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import threading
import time
import weakref
from dataclasses import replace
from typing import Any

import openai

from grit_exp.api_keys import SecretStr, redact
from grit_exp.judge.base import JudgeConfigError, JudgeRequest, JudgeResult, JudgeStats
from grit_exp.judge.cache import JudgeCache, verdict_key
from grit_exp.judge.prompt import JUDGE_PROMPT_VERSION, build_judge_prompt, parse_score

logger = logging.getLogger(__name__)

_CONFIGURATION_STATUS = (401, 403, 404)
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"


def effective_base_url(base_url: str | None, api_type: str) -> str:
    """The endpoint the client will call: judge.base_url, else what the client itself would use."""
    if base_url:
        return base_url
    if api_type == "azure":
        return os.environ.get("AZURE_OPENAI_ENDPOINT", "")
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_BASE_URL


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
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.cache = cache
        self.name = f"{api_type}:{model}"
        self.verdict_key = verdict_key(
            base_url=effective_base_url(base_url, api_type), api_type=api_type, model=model, api_version=api_version,
            temperature=temperature, max_tokens=max_tokens, prompt_version=JUDGE_PROMPT_VERSION,
        )
        self.stats = JudgeStats()
        self._api_key = api_key
        self._prompts_sent = 0  # first requests; stats.retries = stats.requests - this
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
            for prompt, (value, raw) in self.cache.get_many(self.verdict_key, unique_prompts).items():
                verdicts[prompt] = JudgeResult(score=value, raw=raw, failed=False, cached=True)
            self.stats.cache_hits += len(verdicts)
        to_send = [prompt for prompt in unique_prompts if prompt not in verdicts]
        if to_send:
            verdicts.update(zip(to_send, await self._send_all(to_send), strict=True))

        self._log_batch(before, time.perf_counter() - started)
        return [replace(verdicts[prompt]) for prompt in prompts]

    # -- sending ---------------------------------------------------------------------------------

    async def _count_request(self, request: Any) -> None:
        self.stats.requests += 1  # every HTTP request, the client's own retries included

    def _make_client(self) -> openai.AsyncOpenAI:
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

    async def _judge_prompt(
        self, client: openai.AsyncOpenAI, semaphore: asyncio.Semaphore, prompt: str
    ) -> JudgeResult:
        """One verdict: the client retries HTTP failures; a reply without a score is asked again here."""
        last_error = "not sent"
        last_raw: str | None = None
        self._prompts_sent += 1
        for attempt in range(self.max_retries + 1):  # re-asks after a non-chat body or a malformed reply
            try:
                async with semaphore:
                    reply = await client.post("/chat/completions", body=self._body(prompt), cast_to=object)
            except openai.APITimeoutError:
                last_error = f"timed out after {self.timeout_s} s ({self.max_retries} retries)"
                break
            except openai.APIConnectionError as error:
                last_error = f"connection error: {redact(str(error.__cause__ or error))} ({self.max_retries} retries)"
                break
            except openai.APIStatusError as error:
                if error.status_code in _CONFIGURATION_STATUS:
                    raise JudgeConfigError(
                        f"judge endpoint {self.base_url or 'default'} answered HTTP {error.status_code} for "
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
                except _NotAChatCompletion as error:
                    last_error = str(error)
                else:
                    value = parse_score(last_raw)
                    if value is not None:
                        if self.cache is not None:
                            self.cache.put(self.verdict_key, prompt, value, last_raw or "")
                        self._update_retries()
                        return JudgeResult(score=value, raw=last_raw, failed=False)
                    self.stats.malformed += 1
                    last_error = f"malformed reply (no score in [0, 1]): {(last_raw or '')[:200]!r}"
            if attempt < self.max_retries:
                logger.debug("%s: %s; asking again (%d)", self.name, last_error, attempt + 1)
        self._update_retries()
        self.stats.failures += 1
        logger.warning("%s: judgement failed: %s", self.name, last_error)
        return JudgeResult(score=None, raw=last_raw, failed=True, error=last_error)

    def _update_retries(self) -> None:
        self.stats.retries = self.stats.requests - self._prompts_sent

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
