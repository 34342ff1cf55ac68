"""`to_typed`: a composed config converted once into its dataclass tree (`TrainConfig`, `EvalConfig`,
`AppConfig`), so that the code past an entry point reads typed attributes, never a DictConfig.

Each entry point composes a DictConfig (Hydra), refuses literal keys on it (grit_exp.api_keys, which
must see the interpolations as written), then calls `to_typed(cfg, Schema)` once; validation, the
run and everything it builds receive the dataclasses (`OmegaConf.to_object`: interpolations resolved,
enums as their `StrEnum` members, lists and dicts as plain containers). A config that was not composed
onto the schema (a saved `.hydra/config.yaml` reloaded with `--config-path RUN/.hydra --config-name
config`, or a job of a sweep) is merged onto it first, so it is checked the same way. The `hydra` node
is dropped. Key-like settings (`judge.api_key`) keep their `${oc.env:VAR}` text unresolved: the key
is read from the environment where it is used (grit_exp.judge.openai_client) and never held in the
config, so nothing written from the config can carry it; a literal key was refused before this.
A value that cannot resolve (an unset `${oc.env:VAR}` without default) or does not fit the schema is
one ConfigError naming the key. `grit_exp.api_keys.to_plain` turns a typed config back into plain
containers (W&B), secrets scrubbed.

Left out: composing (Hydra), the checks (`entries.validate_*`), refusing literal keys (grit_exp.api_keys).
"""

from __future__ import annotations

from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from grit_exp.api_keys import SECRET_KEY_NAME
from grit_exp.errors import ConfigError, one_line

T = TypeVar("T")

def _raw_secret_settings(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """Key-like settings holding an interpolation (`${oc.env:VAR}`), by path, as written."""
    found: dict[tuple[str, ...], str] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and SECRET_KEY_NAME.search(str(key)) and "${" in value:
                found[(*path, str(key))] = value
            else:
                found |= _raw_secret_settings(value, (*path, str(key)))
    return found


def to_typed(cfg: Any, schema: type[T]) -> T:
    """`cfg` (a composed DictConfig, or already a `schema` instance) as a `schema` dataclass tree."""
    if isinstance(cfg, schema):
        return cfg
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"to_typed needs a DictConfig or a {schema.__name__}, got {type(cfg).__name__}")
    try:
        node = cfg.copy()
        if "hydra" in node:
            with open_dict(node):
                del node["hydra"]
        if OmegaConf.get_type(node) is not schema:
            node = OmegaConf.merge(OmegaConf.structured(schema), node)
        secrets = _raw_secret_settings(OmegaConf.to_container(node, resolve=False))
        for path in secrets:
            OmegaConf.update(node, ".".join(path), None, merge=False)
        typed = OmegaConf.to_object(node)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        raise ConfigError(f"{key or 'the config'}: {one_line(str(error).splitlines()[0])}") from None
    for path, raw in secrets.items():
        holder = typed
        for key in path[:-1]:
            holder = holder[key] if isinstance(holder, dict) else getattr(holder, key)
        if isinstance(holder, dict):
            holder[path[-1]] = raw
        else:
            setattr(holder, path[-1], raw)
    return typed  # type: ignore[return-value]
