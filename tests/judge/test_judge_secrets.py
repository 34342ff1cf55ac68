"""Keys stay out of everything written: redaction, reprs, setting checks, and a real Hydra app."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from grit_exp.api_keys import (
    MASK,
    RedactingFilter,
    RefuseLiteralSecrets,
    SecretStr,
    check_api_key_setting,
    find_literal_secrets,
    redact,
)
from grit_exp.config import JudgeConfig
from grit_exp.config.judge import check_judge
from grit_exp.errors import ConfigError, LiteralSecretError
from grit_exp.judge import build_judge
from grit_exp.judge.openai_judge import OpenAIJudge
from grit_exp.testing.fake_judge_server import FakeJudgeServer

REPO = Path(__file__).resolve().parents[2]


def a_key(prefix: str = "grit-test-key-") -> str:
    return prefix + secrets.token_hex(16)


def test_redact_masks_env_values_and_key_shapes(monkeypatch) -> None:
    env_key = a_key()
    monkeypatch.setenv("OPENAI_API_KEY", env_key)
    openai_shaped = "sk-proj-" + "A1b2" * 8
    text = f"key {env_key}; header Authorization: Bearer abcdefgh12345678; {openai_shaped}; api_key=hunter2hunter2"
    cleaned = redact(text)
    for secret in (env_key, "abcdefgh12345678", openai_shaped, "hunter2hunter2"):
        assert secret not in cleaned
    assert cleaned.count(MASK) == 4
    assert (
        redact("judge.api_key=${oc.env:MY_KEY} model=gpt-4o") == "judge.api_key=${oc.env:MY_KEY} model=gpt-4o"
    )


def test_redacting_filter_cleans_arguments_and_tracebacks(monkeypatch) -> None:
    env_key = a_key()
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", env_key)
    try:
        raise RuntimeError(f"server said: bad key {env_key}")
    except RuntimeError:
        import sys as _sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "using %s", (env_key,), _sys.exc_info())
    RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert env_key not in formatted and MASK in record.getMessage() and "server said" in formatted


def test_secret_str_and_judge_reprs_hide_the_key() -> None:
    key = a_key()
    hidden = SecretStr(key)
    assert key not in repr(hidden) + str(hidden) + f"{hidden}" and hidden.get_secret_value() == key
    judge = OpenAIJudge(model="m", api_key=hidden, base_url="http://127.0.0.1:9/v1")
    assert key not in repr(judge) + str(judge) + repr(vars(judge))


@pytest.mark.parametrize(
    ("raw", "variable"), [(None, None), ("null", None), ("${oc.env:MY_JUDGE_KEY}", "MY_JUDGE_KEY")]
)
def test_api_key_setting_accepts_null_and_env_interpolation(raw, variable) -> None:
    assert check_api_key_setting(raw) == variable


@pytest.mark.parametrize(
    "raw", ["sk-abc123abc123abc123abc123", "${oc.env:MY_KEY,sk-fallback-literal}", "${other.key}", 42]
)
def test_api_key_setting_refuses_literals_without_echoing_them(raw) -> None:
    with pytest.raises(LiteralSecretError, match="judge.api_key holds a literal value") as error:
        check_api_key_setting(raw)
    assert str(raw) not in str(error.value)


def test_check_judge_refuses_a_literal_key() -> None:
    cfg = OmegaConf.structured(JudgeConfig(kind="openai", api_key="literal-key-123456"))
    with pytest.raises(ConfigError, match="judge.api_key"):
        check_judge(cfg)
    cfg.api_key = "${oc.env:MY_JUDGE_KEY}"
    check_judge(cfg)  # not resolved, so the variable need not exist


def test_build_judge_reads_the_named_variable_and_fails_clearly_without_it(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cfg = OmegaConf.structured(JudgeConfig(kind="openai", cache_path=None))
    with pytest.raises(Exception, match="OPENAI_API_KEY"):
        build_judge(cfg)
    key = a_key()
    monkeypatch.setenv("MY_JUDGE_KEY", key)
    cfg.api_key = "${oc.env:MY_JUDGE_KEY}"
    judge = build_judge(cfg)
    assert judge.name == "openai:gpt-4o" and key not in repr(judge)
    assert redact(f"x {key} y") == f"x {MASK} y"  # registered for redaction


def test_find_literal_secrets_checks_config_and_raw_overrides() -> None:
    cfg = OmegaConf.create(
        {
            "judge": {"api_key": None, "base_url": "http://host/v1?key=sk-" + "x" * 24},
            "hydra": {
                "overrides": {
                    "task": ["judge.api_key=literal-value-1", "+logger.wandb_api_key='${oc.env:W}'"]
                }
            },
        }
    )
    problems = find_literal_secrets(cfg)
    assert any("judge.base_url" in p for p in problems)
    assert any("command-line override judge.api_key holds a literal value" in p for p in problems)
    assert not any("wandb_api_key" in p for p in problems)
    assert not any("literal-value-1" in p or "x" * 24 in p for p in problems)
    with pytest.raises(SystemExit):
        RefuseLiteralSecrets().on_run_start(cfg)


# ---------------------------------------------------------------------------------------------
# a real Hydra app in a subprocess
# ---------------------------------------------------------------------------------------------

APP = """
import logging, os
import hydra
from grit_exp.config import register_configs
from grit_exp.judge import JudgeRequest, build_judge

register_configs()
log = logging.getLogger("app")

@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    judge = build_judge(cfg.judge)
    for noisy in ("openai", "httpx2", "httpcore2", "grit_exp"):
        logging.getLogger(noisy).setLevel(logging.DEBUG)
    log.info("resolved key, which must come out masked: %s", cfg.judge.api_key)
    results = judge.score([JudgeRequest("How many?", "3", "three"), JudgeRequest("How many?", "3", "4")])
    log.info("results %s; stats %s; judge %r", results, judge.stats, judge)
    assert [r.score for r in results] == [1.0, 0.0], results
    judge.close()

if __name__ == "__main__":
    main()
"""

PRIMARY_CONFIG = """
defaults:
  - judge: openai
  - _self_
paths:
  cache_dir: {cache_dir}
judge:
  model: fake-judge
  timeout_s: 5.0
  max_retries: 1
hydra:
  searchpath:
    - file://{repo_conf}
  run:
    dir: {out}/run
  sweep:
    dir: {out}/multirun
    subdir: ${{hydra.job.num}}
  callbacks:
    refuse_literal_secrets:
      _target_: grit_exp.api_keys.RefuseLiteralSecrets
"""


def make_app(tmp_path: Path, judge_extra: str = "") -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "app.py").write_text(APP)
    config = PRIMARY_CONFIG.format(
        cache_dir=tmp_path / "cache", repo_conf=REPO / "conf", out=tmp_path / "out"
    )
    (tmp_path / "conf" / "config.yaml").write_text(
        config.replace("  max_retries: 1\n", "  max_retries: 1\n" + judge_extra)
    )
    return tmp_path / "out"


def run_app(
    tmp_path: Path, *overrides: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    clean_env = {
        k: v for k, v in os.environ.items() if "KEY" not in k and not k.startswith(("OPENAI", "AZURE"))
    }
    clean_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(tmp_path / "app.py"), *overrides],
        cwd=tmp_path,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.mark.parametrize("mode", [[], ["--multirun"]])
def test_literal_key_on_the_command_line_is_refused_before_any_file(tmp_path, mode) -> None:
    out = make_app(tmp_path)
    key = a_key()
    result = run_app(tmp_path, *mode, f"judge.api_key={key}", "judge.base_url=http://127.0.0.1:9/v1")
    assert result.returncode != 0
    assert "command-line override judge.api_key holds a literal value" in result.stderr
    assert key not in result.stderr + result.stdout
    assert files_containing(tmp_path, key) == []
    assert not out.exists() or not any(out.rglob("*.yaml"))


def test_literal_key_in_a_config_file_is_refused(tmp_path) -> None:
    key = a_key()
    out = make_app(tmp_path, judge_extra=f"  api_key: {key}\n")
    result = run_app(tmp_path, "judge.base_url=http://127.0.0.1:9/v1")
    assert result.returncode != 0 and "judge.api_key holds a literal value" in result.stderr
    assert key not in result.stderr
    assert not out.exists() or files_containing(out, key) == []


def test_key_from_the_environment_lands_in_no_written_file(tmp_path) -> None:
    out = make_app(tmp_path)
    key = a_key()
    with FakeJudgeServer(expected_api_key=key) as server:
        result = run_app(
            tmp_path,
            "judge.api_key=${oc.env:MY_JUDGE_KEY}",
            f"judge.base_url={server.base_url}",
            env={"MY_JUDGE_KEY": key},
        )
        outcomes = [record.outcome for record in server.log]
    assert result.returncode == 0, result.stderr[-3000:]
    assert outcomes == ["ok", "ok"]  # the key reached the server (it checks it)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "app.log" for p in written) and any(p.name == "judge_cache.sqlite" for p in written)
    assert files_containing(tmp_path, key) == []
    assert key not in result.stdout + result.stderr
    log_text = (out / "run" / "app.log").read_text()
    assert f"must come out masked: {MASK}" in log_text
    assert "${oc.env:MY_JUDGE_KEY}" in (out / "run" / ".hydra" / "overrides.yaml").read_text()


def test_scrub_secrets_cleans_a_resolved_config(monkeypatch) -> None:
    from grit_exp.api_keys import scrub_secrets, to_plain

    key = a_key()
    monkeypatch.setenv("MY_JUDGE_VAR", key)  # a name that does not look like a credential's
    cfg = OmegaConf.create(
        {"judge": {"api_key": "${oc.env:MY_JUDGE_VAR}", "model": "gpt-4o"}, "note": [f"x {key}"]}
    )
    check_api_key_setting(OmegaConf.to_container(cfg.judge)["api_key"])  # what validate / the callback do
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert key in str(resolved), "resolving alone would leak the key"
    scrubbed = scrub_secrets(resolved)
    assert key not in str(scrubbed)
    assert scrubbed["judge"] == {"api_key": MASK, "model": "gpt-4o"}
    plain = to_plain(cfg)  # what a W&B config or a sample dump receives: scrubbed
    assert key not in str(plain) and plain["judge"]["api_key"] == MASK
