"""A test double: a local Chat Completions server that plays the GRIT judge, with scheduled faults.

For tests, the judge benchmark, and users' dry runs of a training or an evaluation without an API
key (nothing in a training or evaluation run imports it; a run reaches it only over HTTP, through
`judge.base_url`):

    with FakeJudgeServer(latency_s=0.05) as server:
        ...  judge.base_url=server.base_url, OPENAI_API_KEY=anything

It listens on 127.0.0.1 (ephemeral port) in a background thread and serves
`POST /v1/chat/completions` and Azure's `POST /openai/deployments/{deployment}/chat/completions`.
It reads the standard answer and the model's answer out of the GRIT judge prompt, decides with
the rules judge, and replies `{score: 1}` or `{score: 0}` with a `usage` block (about 4 characters
per token). Faults are deterministic: a global queue consumed by successive requests, and per-answer
queues ("fail the first N requests for this answer"); see `Fault`. It counts requests, the most
requests in flight at once, faults injected, and keeps a log of (time, answer, outcome, the request's
settings: every body field but `messages`, e.g. temperature and max_tokens when sent); another
process reads the counters at `GET /fake/stats` and resets them with `POST /fake/reset`.

It also plays the vision judge of the consistency metric (`grit_exp.judge.vision`): a request whose
user message holds images and the paper's consistency prompt is answered by `vision_fn(reasoning,
images)` (PNG bytes, in order; default: "Image 0"); faults keyed by the reasoning text apply to it.

As a program (for dry runs): `python -m grit_exp.testing.fake_judge_server --port 8000 --latency-ms 50`.

Left out: streaming, tools, other endpoints, real tokenisation.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from grit_exp.judge.prompt import split_judge_prompt
from grit_exp.judge.rules import judge_answer
from grit_exp.judge.vision import reasoning_of_prompt

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


@dataclass
class _Counters:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    log: list[RequestRecord] = field(default_factory=list)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 makes bursts of connections wait for SYN retransmits
    fake: FakeJudgeServer


class FakeJudgeServer:
    """See the module docstring. Thread-safe; start with `start()` or `with`."""

    def __init__(
        self,
        latency_s: float = 0.0,
        faults: Iterable[Fault] = (),
        faults_by_answer: Mapping[str, Sequence[Fault]] | None = None,
        expected_api_key: str | None = None,
        score_fn: Callable[[str, str, str], float] | None = None,
        vision_fn: Callable[[str, list[bytes]], str] | None = None,
    ) -> None:
        self.latency_s = latency_s
        self.expected_api_key = expected_api_key
        self.score_fn = score_fn or (
            lambda question, reference, prediction: judge_answer(reference, prediction)[0]
        )
        self.vision_fn = vision_fn or (lambda reasoning, images: "Image 0")
        self._faults: deque[Fault] = deque(faults)
        self._faults_by_answer: dict[str, deque[Fault]] = {
            answer: deque(queue) for answer, queue in (faults_by_answer or {}).items()
        }
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counters = _Counters()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeJudgeServer:
        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="fake-judge", daemon=True
        )
        self._thread.start()
        logger.info("fake judge server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeJudgeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeJudgeServer is not started; call start() or use it as a context manager")
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """Root URL (what an Azure client takes as its endpoint)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """OpenAI-style base URL (ends in /v1)."""
        return f"{self.endpoint}/v1"

    # -- faults and counters ---------------------------------------------------------------------

    def add_faults(self, *faults: Fault, answer: str | None = None) -> None:
        """Queue faults for the next requests (of the given model answer, if `answer` is set)."""
        with self._lock:
            queue = self._faults if answer is None else self._faults_by_answer.setdefault(answer, deque())
            queue.extend(faults)

    def reset_counters(self) -> None:
        with self._lock:
            in_flight = self._counters.in_flight
            self._counters = _Counters(in_flight=in_flight)

    def counters(self) -> dict[str, Any]:
        """The counters as JSON-ready data (also served at `GET /fake/stats`)."""
        with self._lock:
            c = self._counters
            return {
                "requests": c.requests,
                "max_in_flight": c.max_in_flight,
                "faults_injected": dict(c.faults_injected),
                "paths": dict(c.paths),
            }

    @property
    def requests(self) -> int:
        return self._counters.requests

    @property
    def max_in_flight(self) -> int:
        return self._counters.max_in_flight

    @property
    def faults_injected(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counters.faults_injected)

    @property
    def paths(self) -> Counter[str]:
        with self._lock:
            return Counter(self._counters.paths)

    @property
    def log(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._counters.log)

    def _next_fault(self, prediction: str | None) -> Fault | None:
        with self._lock:
            queue = self._faults_by_answer.get(prediction) if prediction is not None else None
            if queue:
                return queue.popleft()
            return self._faults.popleft() if self._faults else None

    def _enter(self, path: str) -> float:
        with self._lock:
            c = self._counters
            c.requests += 1
            c.in_flight += 1
            c.max_in_flight = max(c.max_in_flight, c.in_flight)
            c.paths[path] += 1
        return time.monotonic()

    def _leave(self, started: float, prediction: str | None, outcome: str,
               settings: dict[str, Any] | None = None) -> None:
        with self._lock:
            c = self._counters
            c.in_flight -= 1
            c.log.append(RequestRecord(started, time.monotonic(), prediction, outcome, settings or {}))
            if outcome in {kind.value for kind in FaultKind}:
                c.faults_injected[outcome] += 1

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake when the server stops (so hung handlers end)."""
        if seconds > 0:
            self._stopping.wait(seconds)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server
    disable_nagle_algorithm = True  # else header and body writes meet delayed ACKs: +40 ms a reply
    server: _Server

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


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m grit_exp.testing.fake_judge_server --port 8000 --latency-ms 50`: serve until interrupted.

    Point a dry run at it with `judge=openai judge.base_url=<printed URL> OPENAI_API_KEY=anything`.
    """
    import argparse

    parser = argparse.ArgumentParser(description="A local fake GRIT judge (Chat Completions) for dry runs.")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    server = FakeJudgeServer(latency_s=args.latency_ms / 1000)
    server.start(port=args.port)
    print(server.base_url, flush=True)  # the one line a parent process reads (stdout)
    try:
        server._stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
