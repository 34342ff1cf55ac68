"""The fake judge server's request handler: route a request, fault or reply, score the answer.

`FakeJudgeHandler` serves `POST /v1/chat/completions` (and `/chat/completions`), Azure's
`POST /openai/deployments/{deployment}/chat/completions`, `GET /fake/stats` and `POST /fake/reset`.
For a chat request it reads the GRIT judge prompt (or, with images, the consistency prompt of the
vision judge), takes the next fault planned for that answer or the global queue (`Fault`), waits the
server's latency, then injects the fault or replies `{score: 1}` / `{score: 0}` (the server's
`score_fn`) with a `usage` block. The state it reads and counts into (faults, counters, latency,
scoring functions) belongs to `FakeJudgeServer` (grit_exp.testing.fake_judge_server).

Left out: the server's state, lifecycle and command line (fake_judge_server); streaming, tools,
other endpoints, real tokenisation.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from grit_exp.judge.prompt import split_judge_prompt
from grit_exp.judge.vision import reasoning_of_prompt

if TYPE_CHECKING:
    from grit_exp.testing.fake_judge_server import JudgeHTTPServer

logger = logging.getLogger(__name__)

_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
_OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")


class FaultKind(Enum):
    RATE_LIMIT = "rate_limit"  # HTTP 429 with Retry-After and/or retry-after-ms
    SERVER_ERROR = "server_error"  # HTTP `status` (default 500)
    HANG = "hang"  # hold the request `hang_s`, then close the connection without a response
    DROP = "drop"  # close the connection without a response
    MALFORMED = "malformed"  # HTTP 200 whose content carries no parseable score
    OUT_OF_RANGE = "out_of_range"  # HTTP 200 with "{score: 8}" (outside [0, 1])
    GARBAGE = "garbage"  # HTTP 200, Content-Type JSON, body not JSON
    HTML_PAGE = "html_page"  # HTTP 200 with an HTML page (what a misconfigured proxy returns)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    retry_after_s: float | None = None  # RATE_LIMIT: the Retry-After header, as given
    retry_after_ms: int | None = None  # RATE_LIMIT: the retry-after-ms header
    status: int = 500  # SERVER_ERROR
    hang_s: float = 5.0  # HANG


@dataclass
class RequestRecord:
    started: float  # time.monotonic() when the request arrived
    finished: float
    prediction: str | None
    outcome: str  # "ok" or a FaultKind value or "bad_request" / "unauthorized" / "not_found"
    settings: dict[str, Any] = field(default_factory=dict)  # the body's fields but `messages` (model, temperature, ...)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class FakeJudgeHandler(BaseHTTPRequestHandler):
    """One HTTP request to the fake judge; `self.server.fake` is the FakeJudgeServer that owns the state."""

    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    disable_nagle_algorithm = True  # else header and body writes meet delayed ACKs: +40 ms a reply
    server: JudgeHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("fake judge: " + format, *args)

    def _send_json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_error_json(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        self._send_json(
            status, {"error": {"message": message, "type": "fake_judge_error", "code": str(status)}}, headers
        )

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        """`GET /fake/stats`: the counters, for a server running in another process."""
        if urlsplit(self.path).path != "/fake/stats":
            self._send_error_json(404, f"fake judge server: no route for GET {self.path}")
            return
        self._send_json(200, self.server.fake.counters())

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        fake = self.server.fake
        path = urlsplit(self.path).path
        if path == "/fake/reset":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fake.reset_counters()
            self._send_json(200, fake.counters())
            return
        started = fake._enter(path)
        prediction: str | None = None
        outcome = "ok"
        payload: Any = {}
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if path not in _OPENAI_PATHS and not _AZURE_PATH.match(path):
                outcome = "not_found"
                self._send_error_json(404, f"fake judge server: no route for {path}")
                return
            if fake.expected_api_key is not None:
                given = self.headers.get("api-key") or self.headers.get("Authorization", "").removeprefix(
                    "Bearer "
                )
                if given != fake.expected_api_key:
                    outcome = "unauthorized"
                    self._send_error_json(401, "fake judge server: wrong or missing API key")
                    return
            try:
                payload = json.loads(body)
                prompt = _user_text(payload["messages"])
                parts = split_judge_prompt(prompt)
                images = _user_images(payload["messages"])
            except (ValueError, KeyError, TypeError, IndexError) as error:
                parts, payload, images = None, {}, []
                logger.debug("fake judge: bad request body: %s", error)
            reasoning = reasoning_of_prompt(prompt) if images else None
            if reasoning is not None:
                prediction = reasoning
                outcome = self._fault_or_reply(reasoning, payload, prompt, lambda: fake.vision_fn(reasoning, images))
                return
            if parts is None:
                outcome = "bad_request"
                self._send_error_json(
                    400, "fake judge server: the last user message is not a GRIT judge prompt"
                )
                return
            question, reference, prediction = parts
            outcome = self._fault_or_reply(
                prediction, payload, prompt,
                lambda: f"{{score: {1 if fake.score_fn(question, reference, prediction) >= 0.5 else 0}}}")
        except (BrokenPipeError, ConnectionResetError):
            outcome = "client_gone"
        finally:
            settings = {k: v for k, v in payload.items() if k != "messages"} if isinstance(payload, dict) else {}
            fake._leave(started, prediction, outcome, settings)

    def _fault_or_reply(self, key: str, payload: Mapping[str, Any], prompt: str, content: Callable[[], str]) -> str:
        """After the configured latency, the next fault planned for `key` or the reply `content()`; the outcome."""
        fake = self.server.fake
        fault = fake._next_fault(key)
        fake._wait(fake.latency_s)
        if fault is not None:
            self._inject(fault)
            return fault.kind.value
        self._reply(payload, prompt, content())
        return "ok"

    def _reply(self, payload: Mapping[str, Any], prompt: str, content: str) -> None:
        prompt_tokens, completion_tokens = _tokens(prompt), _tokens(content)
        self._send_json(
            200,
            {
                "id": f"chatcmpl-fake-{time.monotonic_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(payload.get("model", "fake-judge")),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _inject(self, fault: Fault) -> None:
        fake = self.server.fake
        if fault.kind is FaultKind.RATE_LIMIT:
            headers = {}
            if fault.retry_after_s is not None:
                headers["Retry-After"] = f"{fault.retry_after_s:g}"
            if fault.retry_after_ms is not None:
                headers["retry-after-ms"] = str(fault.retry_after_ms)
            self._send_error_json(429, "fake judge server: rate limit reached", headers)
        elif fault.kind is FaultKind.SERVER_ERROR:
            self._send_error_json(fault.status, "fake judge server: injected server error")
        elif fault.kind in (FaultKind.HANG, FaultKind.DROP):
            if fault.kind is FaultKind.HANG:
                fake._wait(fault.hang_s)
            self.close_connection = True  # returning without a response closes the socket
        elif fault.kind is FaultKind.MALFORMED:
            self._reply({}, "", "The model's answer looks mostly right to me.")
        elif fault.kind is FaultKind.OUT_OF_RANGE:
            self._reply({}, "", "{score: 8}")
        elif fault.kind in (FaultKind.GARBAGE, FaultKind.HTML_PAGE):
            body = b"<html><body>502 Bad Gateway (but sent as 200)</body></html>"
            self.send_response(200)
            self.send_header(
                "Content-Type", "application/json" if fault.kind is FaultKind.GARBAGE else "text/html"
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:  # pragma: no cover - every FaultKind is handled above
            raise AssertionError(fault.kind)


def _user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message (a string, or the text parts of a content list)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    raise KeyError("no user message")


def _user_images(messages: list[dict[str, Any]]) -> list[bytes]:
    """The images (decoded base64 data URLs) of the last user message, in order; [] for text only."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return []
            urls = [part["image_url"]["url"] for part in content if part.get("type") == "image_url"]
            return [base64.b64decode(url.split(",", 1)[1]) for url in urls]
    raise KeyError("no user message")
