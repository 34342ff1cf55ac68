"""The judge presets `paper` / `code` against the real local fake server (the openai client is not mocked).

`code` is the released call: no temperature and no max_tokens in the request, replies read by the
released parser (a reply it cannot read is 0, not asked again). The fake server logs each request's
settings (its body without the messages), so the tests read what was actually sent.
"""

from __future__ import annotations

import json

import pytest

from grit_exp.judge import JudgeRequest
from grit_exp.judge.cache import JudgeCache, verdict_key
from grit_exp.judge.prompt import parse_score_released
from grit_exp.testing.fake_judge_server import Fault, FaultKind

QUESTION = "\nQuestion: How many chairs are there? First, think between <think> and </think> ..."
CODE = {"temperature": None, "max_tokens": None, "score_parser": "released"}
PAPER = {"temperature": 0.0, "max_tokens": 64, "score_parser": "tolerant"}


def ask(judge, *pairs):
    return judge.score([JudgeRequest(QUESTION, reference, prediction) for reference, prediction in pairs])


def test_code_preset_sends_neither_temperature_nor_max_tokens(fake_server, make_judge):
    ask(make_judge(**CODE), ("3", "three"))
    ask(make_judge(**PAPER), ("3", "three"))
    code, paper = (record.settings for record in fake_server.log)
    assert code == {"model": "fake-judge"}, "the released call: the API's defaults"
    assert paper == {"model": "fake-judge", "temperature": 0.0, "max_tokens": 64}


@pytest.mark.parametrize("kind", [FaultKind.MALFORMED, FaultKind.OUT_OF_RANGE])
def test_code_preset_reads_replies_as_the_released_parser(fake_server, make_judge, kind):
    """A reply without a readable score: released -> whatever the released parser says (0 for prose, 8 for
    "{score: 8}"), one request; tolerant -> asked again, then the right verdict."""
    fake_server.add_faults(Fault(kind), answer="three")
    (released,) = ask(make_judge(**CODE), ("3", "three"))
    assert fake_server.requests == 1 and not released.failed
    assert released.score == parse_score_released(released.raw) == {FaultKind.MALFORMED: 0.0, FaultKind.OUT_OF_RANGE: 8.0}[kind]
    fake_server.add_faults(Fault(kind), answer="three")
    (tolerant,) = ask(make_judge(**PAPER), ("3", "three"))
    assert tolerant.score == 1.0 and fake_server.requests == 3, "asked again after the unreadable reply"


def test_a_verdict_is_not_served_across_presets(fake_server, make_judge, tmp_path):
    cache = JudgeCache(tmp_path / "verdicts.sqlite")
    ask(make_judge(**PAPER, cache=cache), ("3", "three"))
    ask(make_judge(**CODE, cache=cache), ("3", "three"))
    assert fake_server.requests == 2 and len(cache) == 2
    ask(make_judge(**CODE, cache=cache), ("3", "three"))
    assert fake_server.requests == 2, "the same preset is served from the cache"


def test_not_sent_is_distinguishable_from_a_value_in_the_cache_key():
    common = {"base_url": "http://x/v1", "api_type": "openai", "model": "gpt-4o", "api_version": None, "prompt_version": 1}
    keys = {
        verdict_key(**common, temperature=0.0, max_tokens=64),
        verdict_key(**common, temperature=None, max_tokens=64),
        verdict_key(**common, temperature=0.0, max_tokens=None),
        verdict_key(**common, temperature=0.0, max_tokens=64, score_parser="released"),
    }
    assert len(keys) == 4
    assert json.loads(verdict_key(**common, temperature=None, max_tokens=None))["temperature"] is None
    # the tolerant parser's key is the one written before presets existed: older caches stay valid
    assert verdict_key(**common, temperature=0.0, max_tokens=64) == json.dumps(
        {**common, "temperature": 0.0, "max_tokens": 64}, sort_keys=True)


def test_an_evaluation_records_its_judge_preset(fake_server, tmp_path, monkeypatch, grit_cache):
    """judge=openai_code through a real evaluation: what was sent, and metrics.json `_meta`."""
    from tests.helpers.eval_runs import benchmark_rows, evaluate_rows

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    server = [f"judge.base_url={fake_server.base_url}", "judge.cache_path=null", "judge.max_retries=1"]
    rows = benchmark_rows()[:3]
    for preset, judge in (("code", "openai_code"), ("paper", "openai")):
        fake_server.reset_counters()
        run = evaluate_rows(tmp_path / preset, rows, f"judge={judge}", *server)
        meta = json.loads((run / "metrics.json").read_text())["_meta"]
        assert meta["judge_preset"] == preset and meta["judge"] == "openai:gpt-4o"
        assert meta["judge_settings"] == {"preset": preset, **(CODE if preset == "code" else PAPER)}
        sent = {key for record in fake_server.log for key in record.settings}
        assert ("temperature" in sent) is (preset == "paper") and ("max_tokens" in sent) is (preset == "paper")
