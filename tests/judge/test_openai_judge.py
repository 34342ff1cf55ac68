"""The OpenAI-compatible judge against the real local fake server (the openai client is not mocked)."""

from __future__ import annotations

import asyncio
import time

import pytest

from grit_exp.api_keys import SecretStr
from grit_exp.errors import JudgeConfigError
from grit_exp.judge import JudgeRequest
from grit_exp.judge.cache import JudgeCache
from grit_exp.testing.fake_judge_server import FakeJudgeServer, Fault, FaultKind

QUESTION = "\nQuestion: How many chairs are there? First, think between <think> and </think> ..."


def requests_for(*pairs: tuple[str, str]) -> list[JudgeRequest]:
    return [JudgeRequest(QUESTION, reference, prediction) for reference, prediction in pairs]


def test_judges_answers_and_counts_usage(fake_server, make_judge) -> None:
    judge = make_judge()
    results = judge.score(requests_for(("3", "three"), ("3", "4"), ("yes", "Yes, it is."), ("tv", "a car")))
    assert [r.score for r in results] == [1.0, 0.0, 1.0, 0.0]
    assert all(not r.failed and not r.cached and r.raw in ("{score: 1}", "{score: 0}") for r in results)
    assert judge.name == "openai:fake-judge"
    assert judge.stats.requests == fake_server.requests == 4
    assert judge.stats.prompt_tokens > 4 * 50 and judge.stats.completion_tokens == 4 * 3
    assert fake_server.paths == {"/v1/chat/completions": 4}


@pytest.mark.parametrize("kind", list(FaultKind))
def test_each_fault_kind_is_retried_and_recovers(fake_server, make_judge, kind: FaultKind) -> None:
    fake_server.add_faults(Fault(kind, retry_after_ms=20, hang_s=3.0), answer="three")
    judge = make_judge(timeout_s=0.3)
    results = judge.score(requests_for(("3", "three"), ("3", "5")))
    assert [r.score for r in results] == [1.0, 0.0]
    assert not any(r.failed for r in results)
    assert judge.stats.retries == 1 and judge.stats.failures == 0
    assert judge.stats.malformed == (1 if kind in (FaultKind.MALFORMED, FaultKind.OUT_OF_RANGE) else 0)
    if kind is not FaultKind.HANG:  # the hung handler is still holding its request
        assert fake_server.faults_injected == {kind.value: 1}


def test_exhausted_retries_are_failures_not_zeros_and_not_cached(fake_server, make_judge, tmp_path) -> None:
    fake_server.add_faults(*[Fault(FaultKind.SERVER_ERROR, status=503)] * 3, answer="three")
    cache = JudgeCache(tmp_path / "cache.sqlite")
    judge = make_judge(max_retries=2, cache=cache)
    failed, other = judge.score(requests_for(("3", "three"), ("3", "3")))
    assert failed.failed and failed.score is None and "HTTP 503" in (failed.error or "")
    assert other.score == 1.0 and not other.failed  # one failure does not spoil the batch
    assert judge.stats.failures == 1 and judge.stats.retries == 2 and fake_server.requests == 4
    assert len(cache) == 1  # only the success
    again = judge.score(requests_for(("3", "three")))  # the server recovered: asked again, now cached
    assert again[0].score == 1.0 and fake_server.requests == 5 and len(cache) == 2


def test_non_retryable_client_error_fails_after_one_request(fake_server, make_judge) -> None:
    fake_server.add_faults(Fault(FaultKind.SERVER_ERROR, status=400), answer="three")
    judge = make_judge()
    (result,) = judge.score(requests_for(("3", "three")))
    assert result.failed and "HTTP 400" in (result.error or "") and fake_server.requests == 1


def test_malformed_replies_until_the_end_keep_the_last_raw_text(fake_server, make_judge) -> None:
    fake_server.add_faults(*[Fault(FaultKind.MALFORMED)] * 2, answer="three")
    judge = make_judge(max_retries=1)
    (result,) = judge.score(requests_for(("3", "three")))
    assert result.failed and result.score is None and "malformed" in (result.error or "")
    assert result.raw == "The model's answer looks mostly right to me."
    assert judge.stats.malformed == 2


@pytest.mark.parametrize(
    ("fault", "wait_s"),
    [
        (Fault(FaultKind.RATE_LIMIT, retry_after_s=1), 1.0),
        (Fault(FaultKind.RATE_LIMIT, retry_after_ms=300), 0.3),
    ],
)
def test_retry_after_is_honoured(fake_server, make_judge, fault: Fault, wait_s: float) -> None:
    fake_server.add_faults(fault, answer="three")
    judge = make_judge()  # the openai client's retry honours the header
    (result,) = judge.score(requests_for(("3", "three")))
    assert result.score == 1.0
    deadline = time.monotonic() + 5  # the server logs a request after it has sent the reply
    while len(fake_server.log) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    first, second = fake_server.log
    assert first.outcome == "rate_limit" and second.outcome == "ok"
    gap = second.started - first.finished
    assert wait_s * 0.9 <= gap < wait_s + 1.0


def test_cache_makes_a_second_run_send_no_request(fake_server, make_judge, tmp_path) -> None:
    batch = requests_for(*[("3", str(n)) for n in range(10)])
    first = make_judge(cache=JudgeCache(tmp_path / "c.sqlite")).score(batch)
    assert fake_server.requests == 10
    fake_server.reset_counters()
    second_judge = make_judge(cache=JudgeCache(tmp_path / "c.sqlite"))  # a new process would do the same
    second = second_judge.score(batch)
    assert fake_server.requests == 0 and second_judge.stats.requests == 0
    assert second_judge.stats.cache_hits == 10 and all(r.cached for r in second)
    assert [r.score for r in second] == [r.score for r in first]
    other_model = make_judge(model="another-judge", cache=JudgeCache(tmp_path / "c.sqlite"))
    other_model.score(batch[:2])
    assert fake_server.requests == 2  # the cache key includes the model


def test_identical_prompts_are_sent_once(fake_server, make_judge) -> None:
    judge = make_judge()
    results = judge.score(requests_for(*[("3", "3")] * 4, ("3", "2")))
    assert [r.score for r in results] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert fake_server.requests == 2 and judge.stats.deduplicated == 3
    results[0].score = 0.5
    assert results[1].score == 1.0  # each answer has its own result object


def test_concurrency_bound_is_respected() -> None:
    with FakeJudgeServer(latency_s=0.05) as server:
        from grit_exp.judge.openai_judge import OpenAIJudge

        judge = OpenAIJudge(model="m", api_key=SecretStr("k"), base_url=server.base_url, concurrency=4)
        started = time.perf_counter()
        judge.score(requests_for(*[("3", str(n)) for n in range(24)]))
        elapsed = time.perf_counter() - started
        judge.close()
    assert server.max_in_flight == 4
    assert elapsed < 24 * 0.05  # faster than one at a time could be (6 waves of 50 ms: ~0.3 s)


def test_wrong_key_raises_a_configuration_error_without_the_key(make_judge) -> None:
    with FakeJudgeServer(expected_api_key="the-right-key") as server:
        judge = make_judge(base_url=server.base_url, api_key=SecretStr("a-wrong-key-123"))
        with pytest.raises(JudgeConfigError, match="HTTP 401") as error:
            judge.score(requests_for(("3", "3"), ("3", "4")))
    assert "a-wrong-key-123" not in str(error.value)


def test_azure_client_uses_the_deployment_path(fake_server, make_judge) -> None:
    judge = make_judge(
        api_type="azure", base_url=fake_server.endpoint, api_version="2024-10-21", model="gpt4o-dep"
    )
    (result,) = judge.score(requests_for(("no", "No")))
    assert result.score == 1.0 and judge.name == "azure:gpt4o-dep"
    assert fake_server.paths == {"/openai/deployments/gpt4o-dep/chat/completions": 1}


def test_score_works_inside_a_running_event_loop_and_ascore_is_awaitable(fake_server, make_judge) -> None:
    judge = make_judge()

    async def caller() -> tuple[list, list]:
        return judge.score(requests_for(("3", "3"))), await judge.ascore(requests_for(("3", "4")))

    from_sync, from_async = asyncio.run(caller())
    assert from_sync[0].score == 1.0 and from_async[0].score == 0.0


def test_fake_server_runs_as_a_program_with_stats_endpoints(make_judge) -> None:
    import json
    import subprocess
    import sys
    import urllib.request

    command = [sys.executable, "-m", "grit_exp.testing.fake_judge_server", "--latency-ms", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        judge = make_judge(base_url=base_url)
        assert [r.score for r in judge.score(requests_for(("3", "3"), ("3", "4")))] == [1.0, 0.0]
        stats_url = base_url.removesuffix("/v1") + "/fake/stats"
        with urllib.request.urlopen(stats_url, timeout=5) as response:
            assert json.load(response)["requests"] == 2
        reset = urllib.request.Request(base_url.removesuffix("/v1") + "/fake/reset", data=b"", method="POST")
        with urllib.request.urlopen(reset, timeout=5) as response:
            assert json.load(response)["requests"] == 0
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_fake_server_run_does_not_poison_a_run_against_another_endpoint(fake_server, make_judge, tmp_path) -> None:
    """Measured before the fix: 0 requests, 3 cache hits, verdicts of the fake server served as real ones."""
    batch = requests_for(("3", "three"), ("3", "5"), ("yes", "no"))
    make_judge(cache=JudgeCache(tmp_path / "c.sqlite")).score(batch)  # the dry run against the fake server
    assert fake_server.requests == 3
    with FakeJudgeServer() as real_endpoint:  # another endpoint, same model name
        judge = make_judge(base_url=real_endpoint.base_url, cache=JudgeCache(tmp_path / "c.sqlite"))
        results = judge.score(batch)
        assert real_endpoint.requests == 3 and judge.stats.cache_hits == 0 and not any(r.cached for r in results)
    for setting in ({"temperature": 0.7}, {"max_tokens": 32}, {"api_type": "azure", "api_version": "2024-06-01"}):
        other = make_judge(cache=JudgeCache(tmp_path / "c.sqlite"), **setting)
        if setting.get("api_type") == "azure":
            continue  # the key differs (checked below); the fake server does not serve Azure paths here
        other.score(batch[:1])
        assert other.stats.cache_hits == 0, setting
    keys = {make_judge(**s).verdict_key for s in ({}, {"temperature": 0.7}, {"max_tokens": 32}, {"model": "m2"},
                                                  {"api_type": "azure", "api_version": "2024-06-01"},
                                                  {"base_url": "http://127.0.0.1:1/v1"})}
    assert len(keys) == 6
    same = make_judge(cache=JudgeCache(tmp_path / "c.sqlite"))  # the same judge again: all from the cache
    same.score(batch)
    assert same.stats.cache_hits == 3 and same.stats.requests == 0


def test_no_training_or_evaluation_run_imports_the_test_doubles() -> None:
    """The fake server is a test double (grit_exp.testing): runs reach it over HTTP only, never by import."""
    import subprocess
    import sys

    code = ("import sys, grit_exp.train, grit_exp.evaluate, grit_exp.training.run, grit_exp.evaluation.runner, "
            "grit_exp.judge.openai_judge, grit_exp.judge.vision; "
            "print(sorted(m for m in sys.modules if m.startswith('grit_exp.testing')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
