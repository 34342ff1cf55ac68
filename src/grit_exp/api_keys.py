"""Keeping the judge's API key out of everything the toolkit writes.

Keys come only from the environment: OPENAI_API_KEY; AZURE_OPENAI_API_KEY (+ AZURE_OPENAI_ENDPOINT,
OPENAI_API_VERSION) for Azure. `judge.api_key` may be null (use those variables) or exactly
`${oc.env:VAR}` (read another variable): Hydra saves that interpolation unresolved, so the key never
lands in `.hydra/config.yaml`. Anything else, a literal key in a YAML file or on the command line
included, is refused, by one function on every path:

- `check_api_key_setting` decides for one setting (judge.api_key: the judge's checks,
  grit_exp.config.judge, and `build_judge`);
- `refuse_literal_secrets` applies it (and a key-shape test) to a whole composed config and its raw
  overrides. `grit_exp.preflight` runs it on the config each entry point is about to run, composed
  before Hydra starts: every path (command line, experiment file, a saved config reused with
  `--config-path`, `--cfg`, `--info`, each job of a `--multirun`) is checked before anything is
  written or printed. `RefuseLiteralSecrets`, a Hydra callback, runs it for apps that declare it in
  their primary config and do not go through preflight (it exits with SystemExit because Hydra
  turns an Exception raised in a callback into a warning).
- `redact` masks key-shaped strings and the values of the key variables; `RedactingFilter` applies
  it to log records; `scrub_secrets` to resolved data before it is written, `to_plain` to a whole
  resolved config (W&B config, run_info.json); `SecretStr` hides a key from repr/str.

Left out: secret managers, key files; the writers themselves (they call `to_plain` / `redact`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from grit_exp.errors import LiteralSecretError

logger = logging.getLogger(__name__)

SECRET_ENV_VARS = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY")
MASK = "***REDACTED***"
ENV_INTERPOLATION = re.compile(r"^\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)\}$")
SECRET_KEY_NAME = re.compile(r"api_?key|secret|password", re.IGNORECASE)
_SECRET_ENV_NAME = re.compile(r"(API_?KEY|_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_MIN_SECRET_LENGTH = 8  # shorter env values (e.g. "EMPTY" for a local server) are not masked
_KEY_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._\-~+/]{8,}=*"),
    re.compile(r"(?i)(api[-_]?key[\"']?\s*[:=]\s*[\"']?)(?!\$\{)[^\s\"',;}&]{8,}"),
)
_registered_secrets: set[str] = set()

HOW_TO_GIVE_A_KEY = (
    "Keys are read only from the environment: export OPENAI_API_KEY (or AZURE_OPENAI_API_KEY with "
    "judge.api_type=azure) and leave judge.api_key null, or name another variable with "
    "judge.api_key='${oc.env:MY_KEY_VAR}' (quoted, so the shell keeps the interpolation)."
)


class SecretStr:
    """A string that never shows itself in repr/str/format."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretStr('**********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)


def register_secret(value: str | None) -> None:
    """Mask `value` in every later `redact` call (used for keys read from a custom variable)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _registered_secrets.add(value)


def _known_secrets() -> set[str]:
    """Registered secrets, the key variables, and any variable named like a credential (WANDB_API_KEY,
    HF_TOKEN, ..._SECRET, ..._PASSWORD)."""
    values = {os.environ.get(name, "") for name in SECRET_ENV_VARS} | _registered_secrets
    values |= {value for name, value in os.environ.items() if _SECRET_ENV_NAME.search(name)}
    return {value for value in values if len(value) >= _MIN_SECRET_LENGTH}


def redact(text: str) -> str:
    """`text` with the key variables' values and anything shaped like a key replaced by a mask."""
    for secret in sorted(_known_secrets(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _KEY_PATTERNS[0].sub("sk-" + MASK, text)
    text = _KEY_PATTERNS[1].sub(lambda m: m.group(1) + MASK, text)
    return _KEY_PATTERNS[2].sub(lambda m: m.group(1) + MASK, text)


def scrub_secrets(data: Any) -> Any:
    """A copy of plain data (e.g. a config resolved with `OmegaConf.to_container(cfg, resolve=True)`)
    with values of key-like names (api_key, *secret*, *password*) masked and `redact` applied to every
    string. Resolving `${oc.env:VAR}` puts the key itself into the data: scrub before writing it to
    W&B, run_info.json or sample dumps."""
    if isinstance(data, dict):
        return {
            key: MASK if SECRET_KEY_NAME.search(str(key)) and value is not None else scrub_secrets(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return type(data)(scrub_secrets(value) for value in data)
    if isinstance(data, str):
        return redact(data)
    return data


def to_plain(cfg: Any) -> dict[str, Any]:
    """The resolved config (a typed config's dataclass tree, or a DictConfig) as plain Python containers
    (for W&B and samples), secrets scrubbed; enums stay `StrEnum` members, which serialise as their values.

    Resolving turns `judge.api_key: ${oc.env:VAR}` into the key itself, so scrubbing is not optional."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    return scrub_secrets(OmegaConf.to_container(node, resolve=True))  # type: ignore[no-any-return]


class RedactingFilter(logging.Filter):
    """Log filter that runs `redact` over the formatted message and any traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction() -> int:
    """Attach a `RedactingFilter` to every handler of the root logger that lacks one (call it after
    logging is configured, e.g. inside the Hydra task function). Returns how many were added."""
    added = 0
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
            added += 1
    return added


# ---------------------------------------------------------------------------------------------
# checking settings
# ---------------------------------------------------------------------------------------------


def check_api_key_setting(raw: object, where: str = "judge.api_key") -> str | None:
    """The environment variable named by a raw (unresolved) key setting, or None for null.

    Raises LiteralSecretError for anything else; the message never contains the value.
    """
    if raw is None or raw == "null":
        return None
    if isinstance(raw, str):
        match = ENV_INTERPOLATION.match(raw.strip())
        if match:
            register_secret(os.environ.get(match.group(1)))  # mask its value from now on
            return match.group(1)
    raise LiteralSecretError(
        f"{where} holds a literal value; it must be null or an environment interpolation ${{oc.env:VAR}} "
        f"(with no default), so that no key is written to a saved config. {HOW_TO_GIVE_A_KEY}"
    )


def raw_api_key(judge_cfg: Any) -> object:
    """judge.api_key as written (an interpolation stays unresolved), from a DictConfig or a dataclass."""
    if isinstance(judge_cfg, DictConfig):
        return OmegaConf.to_container(judge_cfg, resolve=False).get("api_key")  # type: ignore[union-attr]
    return getattr(judge_cfg, "api_key", None)


def _walk(node: object, path: str) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, node


def _looks_secret(text: str) -> bool:
    return redact(text) != text


def find_literal_secrets(cfg: DictConfig) -> list[str]:
    """Problems (naming keys, never values) with secrets in a composed config, its Hydra node included:
    key-like settings (api_key, *secret*, *password*) that are not null / ${oc.env:VAR}, key-shaped
    strings anywhere, and the same in the raw command-line overrides (hydra.overrides.*)."""
    problems: list[str] = []
    container = OmegaConf.to_container(cfg, resolve=False)
    for path, value in _walk(container, ""):
        if path.startswith("hydra.overrides."):
            continue  # checked below, as overrides
        name = path.rsplit(".", 1)[-1]
        if SECRET_KEY_NAME.search(name):
            try:
                check_api_key_setting(value, where=path)
            except LiteralSecretError as error:
                problems.append(str(error).split(";")[0])
                continue
        if isinstance(value, str) and _looks_secret(value):
            problems.append(f"{path} holds a string that looks like an API key")
    hydra_node = container.get("hydra") if isinstance(container, dict) else None
    overrides = hydra_node.get("overrides") if isinstance(hydra_node, dict) else None
    if isinstance(overrides, dict):  # unresolved strings: iterating the ListConfig would resolve them
        for group in ("task", "hydra"):
            raw_list = overrides.get(group)
            if isinstance(raw_list, list):
                problems += _override_problems([str(item) for item in raw_list])
    return problems


def _override_problems(overrides: list[str]) -> list[str]:
    problems = []
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.lstrip("+~")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if sep and SECRET_KEY_NAME.search(key.rsplit(".", 1)[-1]):
            try:
                check_api_key_setting(value or None, where=f"command-line override {key}")
            except LiteralSecretError as error:
                problems.append(str(error).split(";")[0])
                continue
        if _looks_secret(override):
            problems.append(
                f"command-line override {key or '?'}=... holds a string that looks like an API key"
            )
    return problems


def refuse_literal_secrets(cfg: DictConfig, where: str = "") -> None:
    """LiteralSecretError naming every key-like setting or key-shaped string of `cfg` (its raw
    overrides included) that is not null / ${oc.env:VAR}; the message never contains a value."""
    problems = find_literal_secrets(cfg)
    if problems:
        raise LiteralSecretError(
            f"refused to start{where}, before writing any file: " + "; ".join(dict.fromkeys(problems)) + ". "
            + HOW_TO_GIVE_A_KEY
        )


class RefuseLiteralSecrets(Callback):
    """Hydra callback: stop a run or sweep that carries a literal key, before any file is written.

    Register it in the primary config:
        hydra:
          callbacks:
            refuse_literal_secrets:
              _target_: grit_exp.api_keys.RefuseLiteralSecrets
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse(config)

    @staticmethod
    def _refuse(config: DictConfig) -> None:
        try:
            refuse_literal_secrets(config)
        except LiteralSecretError as error:
            # SystemExit, not an Exception: Hydra downgrades callback exceptions to warnings.
            raise SystemExit(f"grit-exp {error}") from None
