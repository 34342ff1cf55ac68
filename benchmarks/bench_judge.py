"""Judge throughput: the concurrent, cached OpenAIJudge vs the released code's one-at-a-time client.

Judges N answers (default 512) against the local fake judge server (in its own process, as a real
endpoint would be) with a fixed latency per request (default 50 ms): first with a synchronous client sending one request at a time (the released GRIT
code's way), then with `OpenAIJudge` at several concurrency levels (each with a fresh cache), then
a second identical run on the last cache, which must send zero requests. Prints a table and writes
it into benchmarks/README.md (section "Judge throughput") and the figures into
results/judge_vs_serial.json. Exits 1 if the cached run sent any
request or the judge disagreed with the baseline on any score.

Run: `make bench` or `python benchmarks/bench_judge.py [--answers 512] [--latency-ms 50]`.
Left out: real endpoints (rate limits, network jitter); this measures the client side only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai

from grit_exp.api_keys import SecretStr
from grit_exp.judge import JudgeRequest, build_judge_prompt, parse_score_released
from grit_exp.judge.cache import JudgeCache
from grit_exp.judge.openai_judge import OpenAIJudge

logger = logging.getLogger("bench_judge")
README = Path(__file__).with_name("README.md")
RESULTS = Path(__file__).with_name("results")
SECTION_START = "<!-- judge-throughput:start -->"
SECTION_END = "<!-- judge-throughput:end -->"
SUFFIX = (
    " First, think between <think> and </think> while output necessary coordinates needed to answer the "
    "question in JSON with key 'bbox_2d'. Then, based on the thinking contents and coordinates, rethink "
    "between <rethink> </rethink> and then answer the question after <answer>.\n"
)


@dataclass
class Row:
    client: str
    concurrency: int
    requests: int
    seconds: float  # wall time (the median when repeated)
    cpu_seconds: float  # this process's CPU time (client side; the server runs in another process)
    scores: list[float | None]
    repeats: int = 1


class ServerProcess:
    """The fake judge server in its own process (as a real endpoint is), read through /fake/stats."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.root = base_url.removesuffix("/v1")

    def _call(self, method: str, path: str) -> dict:
        request = urllib.request.Request(
            self.root + path, method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)

    def reset_counters(self) -> None:
        self._call("POST", "/fake/reset")

    @property
    def requests(self) -> int:
        return self._call("GET", "/fake/stats")["requests"]

    @property
    def max_in_flight(self) -> int:
        return self._call("GET", "/fake/stats")["max_in_flight"]


@contextlib.contextmanager
def server_process(latency_ms: float) -> Iterator[ServerProcess]:
    command = [sys.executable, "-m", "grit_exp.testing.fake_judge_server", "--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        yield ServerProcess(process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(timeout=10)


def make_answers(count: int, seed: int = 0) -> list[JudgeRequest]:
    """Distinct counting / yes-no / text answers, about half of them right."""
    rng = random.Random(seed)
    objects = ["chairs", "cars", "people", "dogs", "cups", "birds", "windows", "trees"]
    answers = []
    for index in range(count):
        kind = index % 3
        if kind == 0:
            truth = rng.randint(0, 9)
            said = truth if rng.random() < 0.5 else rng.randint(0, 9)
            question, reference, prediction = (
                f"How many {rng.choice(objects)} are there? (#{index})",
                str(truth),
                f"{said}",
            )
        elif kind == 1:
            truth = rng.choice(["yes", "no"])
            said = truth if rng.random() < 0.5 else rng.choice(["yes", "no"])
            question, reference, prediction = (
                f"Is the cup left of the plate? (#{index})",
                truth,
                f"{said.capitalize()}.",
            )
        else:
            truth = rng.choice(objects)
            said = truth if rng.random() < 0.5 else rng.choice(objects)
            question, reference, prediction = f"What is next to the table? (#{index})", truth, f"the {said}"
        answers.append(JudgeRequest("\nQuestion: " + question + SUFFIX, reference, prediction))
    return answers


def run_sequential(server: ServerProcess, answers: list[JudgeRequest]) -> Row:
    """One synchronous request per answer, in order, parsed as the released code did."""
    client = openai.OpenAI(api_key="bench-key", base_url=server.base_url, max_retries=0, timeout=30)
    server.reset_counters()
    started, cpu_started = time.perf_counter(), time.process_time()
    scores: list[float | None] = []
    for request in answers:
        reply = client.chat.completions.create(
            model="fake-judge",
            messages=[{"role": "user", "content": build_judge_prompt(request)}],
            temperature=0.0,
        )
        scores.append(parse_score_released(reply.choices[0].message.content or ""))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    client.close()
    return Row(
        "sequential sync client (the released code's way)", 1, server.requests, seconds, cpu_seconds, scores
    )


def run_judge(
    server: ServerProcess, answers: list[JudgeRequest], concurrency: int, cache_path: Path, label: str
) -> Row:
    """One `OpenAIJudge.score` call over all answers; the client is built inside the timed part."""
    server.reset_counters()
    started, cpu_started = time.perf_counter(), time.process_time()
    judge = OpenAIJudge(
        model="fake-judge",
        api_key=SecretStr("bench-key"),
        base_url=server.base_url,
        concurrency=concurrency,
        cache=JudgeCache(cache_path),
    )
    results = judge.score(answers)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    judge.close()
    if any(result.failed for result in results):
        raise RuntimeError(
            f"{label}: {sum(r.failed for r in results)} judgements failed against the local server"
        )
    if server.max_in_flight > concurrency:
        raise RuntimeError(
            f"{label}: {server.max_in_flight} requests in flight, above concurrency {concurrency}"
        )
    return Row(
        label, concurrency, server.requests, seconds, cpu_seconds, [result.score for result in results]
    )


def median_row(runs: list[Row]) -> Row:
    ordered = sorted(runs, key=lambda row: row.seconds)
    middle = ordered[len(ordered) // 2]
    if any(row.scores != middle.scores or row.requests != middle.requests for row in runs):
        raise RuntimeError(f"{middle.client}: repeated runs disagree on scores or request counts")
    return Row(
        middle.client,
        middle.concurrency,
        middle.requests,
        middle.seconds,
        statistics.median(row.cpu_seconds for row in runs),
        middle.scores,
        repeats=len(runs),
    )


def format_table(rows: list[Row], answers: int) -> str:
    baseline = rows[0].seconds
    lines = [
        "| client | concurrency | requests sent | wall time (s) | client CPU (s) | answers/s | speed-up |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        wall = f"{row.seconds:.2f}" + (f" (median of {row.repeats})" if row.repeats > 1 else "")
        lines.append(
            f"| {row.client} | {row.concurrency} | {row.requests} | {wall} | {row.cpu_seconds:.2f} | "
            f"{answers / row.seconds:,.0f} | {baseline / row.seconds:,.1f}x |"
        )
    return "\n".join(lines)


def write_readme_section(
    table: str, args: argparse.Namespace, load: tuple[float, float], speedup: float
) -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    floor_s = args.answers / args.concurrency[-1] * args.latency_ms / 1000
    section = "\n".join(
        [
            SECTION_START,
            "## Judge throughput",
            "",
            f"`python benchmarks/bench_judge.py` (run by `make bench`): {args.answers} answers judged against the "
            f"local fake judge server (`python -m grit_exp.testing.fake_judge_server`, in its own process, "
            f"{args.latency_ms:g} ms latency per request). The baseline sends one request at a time with a "
            "synchronous client, as the released GRIT code did. `OpenAIJudge` keeps at most `judge.concurrency` "
            "requests in flight; each of its runs starts with a fresh sqlite cache and includes building the "
            f"client. The last row repeats the concurrency-{args.concurrency[-1]} run on its cache: it must send "
            "no request (the script exits 1 otherwise).",
            "",
            f"Measured {datetime.date.today().isoformat()} on {cores} CPU cores ({platform.machine()}), shared with "
            f"other jobs (load average {load[0]:.1f} at the start, {load[1]:.1f} at the end), Python "
            f"{platform.python_version()}, openai {openai.__version__}:",
            "",
            table,
            "",
            f"The latency floor at concurrency {args.concurrency[-1]} is {floor_s:.2f} s; above it the run is bound "
            "by the client's CPU time (about 3 ms per request, nearly all in the openai client and its HTTP "
            f"stack), so the figure depends on how busy the cores are; the 20x target was "
            f"{'reached' if speedup >= 20 else 'not reached'} in this run. Against a real endpoint, network time "
            "and the account's rate limits decide.",
            SECTION_END,
        ]
    )
    text = README.read_text() if README.exists() else "# Benchmarks\n\nRun them with `make bench`.\n"
    pattern = re.compile(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), re.DOTALL)
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else text.rstrip("\n") + "\n\n" + section + "\n"
    )
    README.write_text(text)
    logger.info("wrote the table into %s", README)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=512)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per concurrency level (the median is reported)"
    )
    parser.add_argument(
        "--no-readme", action="store_true", help="print only; do not rewrite benchmarks/README.md"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("grit_exp").setLevel(logging.WARNING)

    answers = make_answers(args.answers)
    load_start = os.getloadavg()[0]
    with server_process(args.latency_ms) as server, tempfile.TemporaryDirectory() as tmp:
        rows = [run_sequential(server, answers)]
        logger.info("sequential: %.2f s", rows[0].seconds)
        for concurrency in args.concurrency:
            runs = []
            for repeat in range(args.repeats):
                cache_path = Path(tmp) / f"cache_c{concurrency}_{repeat}.sqlite"
                runs.append(run_judge(server, answers, concurrency, cache_path, "grit_exp `OpenAIJudge`"))
                logger.info("concurrency %d, run %d: %.2f s", concurrency, repeat + 1, runs[-1].seconds)
            rows.append(median_row(runs))
        rows.append(
            run_judge(server, answers, args.concurrency[-1], cache_path, "same, second run on its cache")
        )
    load_end = os.getloadavg()[0]

    table = format_table(rows, args.answers)
    logger.info("\n%s\n", table)
    failures = []
    if rows[-1].requests != 0:
        failures.append(f"the cached run sent {rows[-1].requests} requests (expected 0)")
    if any(row.scores != rows[0].scores for row in rows[1:]):
        failures.append("the judge's scores differ from the baseline's")
    speedup = rows[0].seconds / rows[-2].seconds
    logger.info(
        "speed-up at concurrency %d: %.1fx (target >= 20x: %s); load average %.1f -> %.1f",
        args.concurrency[-1],
        speedup,
        "met" if speedup >= 20 else "NOT met",
        load_start,
        load_end,
    )
    if not args.no_readme:
        write_readme_section(table, args, (load_start, load_end), speedup)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "judge_vs_serial.json").write_text(json.dumps({
        "ratio": speedup, "answers": args.answers, "latency_ms": args.latency_ms,
        "concurrency": args.concurrency[-1], "sequential_s": rows[0].seconds, "concurrent_s": rows[-2].seconds,
        "answers_per_s": args.answers / rows[-2].seconds, "cached_run_requests": rows[-1].requests,
        "conditions": {"load_average": [load_start, load_end]},
    }, indent=2) + "\n")
    for failure in failures:
        logger.error("FAILED: %s", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
