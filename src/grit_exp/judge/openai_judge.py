"""The LLM answer judge over any OpenAI-compatible Chat Completions endpoint (`judge=openai`).

OpenAI, Azure OpenAI (`api_type=azure`) or a local vLLM / SGLang / ollama server (`base_url`).
Answers are judged concurrently, at most `concurrency` requests in flight, on an event loop that the
judge runs in its own daemon thread with one long-lived HTTP client (connections are reused across
calls); `score` is synchronous and works from any thread, `ascore` awaits it from async code.
Identical prompts of one call are sent once; cached verdicts are not sent at all.

Sending is `judge/openai_client.py`'s `ChatClient`, shared with the vision judge: the openai client
and its HTTP retries (`max_retries=judge.max_retries`: timeouts, dropped connections, HTTP 408 / 409
/ 429 / 5xx, Retry-After honoured), a reply without a score in [0, 1] asked again (at most
`max_retries` times), at most `concurrency` requests in flight. An answer still without a score is a
failure (failed=True, score None), counted in `stats` and not cached. HTTP 401 / 403 / 404 raise
`JudgeConfigError` at once: every answer would fail.

Verdicts are cached (judge/cache.py) under `verdict_key`: endpoint, API type and version, model or
deployment, temperature, max_tokens, the judge prompt version and the score parser, so a verdict is
reused only by a judge that would give it.

Presets (grit_exp.config.judge.JUDGE_PRESETS): `temperature` / `max_tokens` None are not sent (the
released call sent neither); `score_parser="released"` reads replies with the released parser, which
never fails: a reply it cannot read scores 0 and is not asked again, and a number outside [0, 1]
(e.g. "{score: 8}") is taken as it is, as the released scoring did.

Left out: streaming, batch API, per-token cost accounting, the consistency (two-image) judge.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
import weakref
from dataclasses import replace

from grit_exp.api_keys import SecretStr
from grit_exp.judge.base import JudgeRequest, JudgeResult, JudgeStats
from grit_exp.judge.cache import JudgeCache, verdict_key
from grit_exp.judge.openai_client import ChatClient, effective_base_url
from grit_exp.judge.prompt import JUDGE_PROMPT_VERSION, build_judge_prompt, parse_score, parse_score_released

logger = logging.getLogger(__name__)

# judge.score_parser -> how a reply's text becomes a score (None: unreadable, asked again)
SCORE_PARSERS = {"tolerant": parse_score, "released": parse_score_released}


def _stop_loop_at_exit(judge_ref: weakref.ref[OpenAIJudge]) -> None:
    judge = judge_ref()
    if judge is not None:
        judge._stop_loop()


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
        temperature: float | None = 0.0,
        max_tokens: int | None = 64,
        score_parser: str = "tolerant",
        cache: JudgeCache | None = None,
    ) -> None:
        if score_parser not in SCORE_PARSERS:
            raise ValueError(f"score_parser={score_parser!r}: choose one of {', '.join(SCORE_PARSERS)}")
        self.stats = JudgeStats()
        self._chat = ChatClient(
            role="judge", model=model, api_key=api_key, base_url=base_url, api_type=api_type,
            api_version=api_version, concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries,
            stats=self.stats,
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
        self.score_parser = score_parser
        self.cache = cache
        self.name = f"{api_type}:{model}"
        self.verdict_key = verdict_key(
            base_url=effective_base_url(base_url, api_type), api_type=api_type, model=model, api_version=api_version,
            temperature=temperature, max_tokens=max_tokens, prompt_version=JUDGE_PROMPT_VERSION,
            score_parser=score_parser,
        )
        self._warned_running_loop = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_pid: int | None = None

    def __repr__(self) -> str:
        return (
            f"OpenAIJudge(name={self.name!r}, base_url={self.base_url!r}, temperature={self.temperature}, "
            f"max_tokens={self.max_tokens}, score_parser={self.score_parser!r}, concurrency={self.concurrency}, "
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
            asyncio.run_coroutine_threadsafe(self._chat.aclose(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=10)
            loop.close()
        self._chat.client = None

    # -- the judge's own event loop --------------------------------------------------------------

    def _judge_loop(self) -> asyncio.AbstractEventLoop:
        """The loop thread that owns the HTTP client, started on first use (and again after a fork).

        One long-lived client keeps its connections (and TLS sessions) across `score` calls; creating
        a client costs ~50 ms (its SSL context) and every new connection a handshake."""
        if self._loop is None or self._loop_pid != os.getpid():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name=f"judge-loop-{self.name}", daemon=True)
            thread.start()
            self._loop, self._loop_thread, self._loop_pid = loop, thread, os.getpid()
            self._chat.client = None  # a client made before a fork belongs to the parent
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

    async def _send_all(self, prompts: list[str]) -> list[JudgeResult]:
        def cache_verdict(index: int, value: float, raw: str | None) -> None:
            if self.cache is not None:
                self.cache.put(self.verdict_key, prompts[index], value, raw or "")

        bodies = [self._chat.body(prompt, self.temperature, self.max_tokens) for prompt in prompts]
        parse = SCORE_PARSERS[self.score_parser]
        asked = await self._chat.ask_all(bodies, lambda _, raw: parse(raw or ""), malformed="no score in [0, 1]",
                                         failure="judgement", on_value=cache_verdict)
        return [JudgeResult(score=a.value, raw=a.raw, failed=False) if a.error is None
                else JudgeResult(score=None, raw=a.raw, failed=True, error=a.error) for a in asked]

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
