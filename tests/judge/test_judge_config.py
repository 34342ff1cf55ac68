"""conf/judge/*.yaml compose onto the JudgeConfig schema and build the judge they describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from grit_exp.config import JudgeConfig, register_configs
from grit_exp.config.judge import check_judge
from grit_exp.errors import ConfigError
from grit_exp.judge import RulesJudge, build_judge
from grit_exp.judge.openai_judge import OpenAIJudge

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


def compose_judge(tmp_path: Path, *overrides: str):
    register_configs()
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "conf" / "config.yaml").write_text(
        "defaults:\n  - judge: rules\n  - _self_\n"
        f"paths:\n  cache_dir: {tmp_path / 'cache'}\n"
        f"hydra:\n  searchpath:\n    - file://{REPO_CONF}\n"
    )
    with initialize_config_dir(config_dir=str(tmp_path / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_rules_is_the_offline_judge(tmp_path) -> None:
    cfg = compose_judge(tmp_path)
    assert cfg.judge.kind == "rules" and cfg.judge.cache_path is None
    assert isinstance(build_judge(cfg.judge), RulesJudge)


def test_openai_yaml_composes_and_builds(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-for-compose")
    cfg = compose_judge(tmp_path, "judge=openai", "judge.base_url=http://127.0.0.1:9/v1")
    assert cfg.judge.model == "gpt-4o" and cfg.judge.api_key is None
    assert cfg.judge.cache_path == str(tmp_path / "cache" / "judge_cache.sqlite")
    judge = build_judge(cfg.judge)
    try:
        assert isinstance(judge, OpenAIJudge) and judge.name == "openai:gpt-4o"
        assert judge.concurrency == 32 and judge.cache is not None and judge.cache.path.exists()
    finally:
        judge.close()


def test_the_yaml_and_the_schema_agree_on_every_key(tmp_path) -> None:
    cfg = compose_judge(tmp_path, "judge=openai")
    schema_defaults = OmegaConf.to_container(OmegaConf.structured(JudgeConfig), resolve=False)
    written = OmegaConf.to_container(cfg.judge, resolve=False)
    assert set(written) == set(schema_defaults)
    assert {k: v for k, v in written.items() if k != "kind"} == {
        k: v for k, v in schema_defaults.items() if k != "kind"
    }


def test_misspelled_key_fails_at_compose(tmp_path) -> None:
    with pytest.raises(Exception, match="concurency"):
        compose_judge(tmp_path, "judge=openai", "judge.concurency=4")


@pytest.mark.parametrize(("key", "value", "valid"), [("kind", "gpt", "[rules, openai]"), ("api_type", "vertex", "[openai, azure]")])
def test_the_schema_refuses_an_unknown_kind_or_api_type(key, value, valid) -> None:
    cfg = OmegaConf.structured(JudgeConfig)
    with pytest.raises(ValidationError, match=f"Invalid value '{value}', expected one of {valid}".replace("[", r"\[")):
        cfg[key] = value


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("concurrency", 0, "judge.concurrency=0 must be >= 1"),
        ("timeout_s", 0.0, "judge.timeout_s=0.0 must be > 0"),
        ("max_retries", -1, "judge.max_retries=-1 must be >= 0"),
    ],
)
def test_check_judge_names_the_bad_key(key, value, message) -> None:
    cfg = OmegaConf.structured(JudgeConfig)
    cfg[key] = value
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        check_judge(cfg)


def test_unresolved_cache_path_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-for-compose")
    with pytest.raises(ConfigError, match="judge.cache_path"):
        build_judge(JudgeConfig(kind="openai"))  # a bare dataclass: ${paths.cache_dir} cannot resolve
