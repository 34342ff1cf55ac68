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

The request handler (routing, faults, replies, scoring) is grit_exp.testing.fake_judge_handler;
this module holds the server's state (fault queues, counters, log), its lifecycle and the command.

Left out: streaming, tools, other endpoints, real tokenisation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from grit_exp.judge.rules import judge_answer
from grit_exp.testing.fake_judge_handler import FakeJudgeHandler, Fault, FaultKind, RequestRecord

__all__ = ["FakeJudgeServer", "Fault", "FaultKind", "RequestRecord", "main"]

logger = logging.getLogger(__name__)


@dataclass
class _Counters:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults_injected: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    log: list[RequestRecord] = field(default_factory=list)


class JudgeHTTPServer(ThreadingHTTPServer):
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
        self._httpd: JudgeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeJudgeServer:
        self._httpd = JudgeHTTPServer(("127.0.0.1", port), FakeJudgeHandler)
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
