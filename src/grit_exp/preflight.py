"""Check a config before Hydra runs: `preflight(...)` in each Hydra entry point's `__main__` block.

Hydra writes `.hydra/{config,hydra,overrides}.yaml` (and a sweep's `multirun.yaml`) before the task
function runs, and prints the config for `--cfg` / `--info` without running it at all. A check inside
the task function, or a Hydra callback declared in the primary config (absent from a saved
`.hydra/config.yaml` reused with `--config-path RUN/.hydra --config-name config`), therefore misses
some ways a config reaches Hydra. `preflight` composes the config exactly as `hydra.main` will (same
command-line parser, search path, config name and overrides, through Hydra's own `Hydra` object),
then, before anything is printed or written:

- refuses literal secrets (`grit_exp.api_keys.find_literal_secrets`) in the composed config and
  in the raw overrides, for every way: command line, experiment file, saved config, `--cfg job|hydra|all`,
  `--info`, and `--multirun` (every job of the sweep is composed, as Hydra's sweeper would);
- runs the entry point's validation (`--cfg` / `--info`: the enumerated values only, so an incomplete
  config can still be shown), so that a bad value fails before any data or model is touched.

A problem is one line on stderr and exit code 2; nothing has been written. Compose errors (an
unknown group option, a misspelled key, a wrong type) are reported the same way. `--help` and shell
completion are left to Hydra.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from grit_exp.config import check_enumerated_values
from grit_exp.errors import EXIT_USER_ERROR, GritError, full_tracebacks, one_line

MAX_SWEEP_JOBS_CHECKED = 512  # a larger sweep: its group choices are composed, its values checked as text


class PreflightError(GritError):
    """The composed config cannot run (or be shown); the message names the key or override."""


def _hydra_task_function(entry_main: Callable[..., Any]) -> Callable[..., Any]:
    return getattr(entry_main, "__wrapped__", entry_main)  # hydra.main wraps the task function


def _compose_error(error: Exception) -> PreflightError:
    cause = error.__cause__
    text = str(error) if cause is None or str(cause) in str(error) else f"{error} ({cause})"
    return PreflightError(f"the config does not compose: {one_line(text)}")


def _check_secrets(cfg: DictConfig, where: str) -> None:
    from grit_exp.api_keys import HOW_TO_GIVE_A_KEY, find_literal_secrets

    problems = find_literal_secrets(cfg)
    if problems:
        raise PreflightError(
            f"refused to start{where}, before writing any file: " + "; ".join(dict.fromkeys(problems)) + ". " + HOW_TO_GIVE_A_KEY
        )


def _sweep_jobs(hydra: Any, master: DictConfig, overrides: list[str]) -> list[list[str]]:
    """The override list of every job of the sweep, as Hydra's basic sweeper splits it."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(master, "hydra.sweeper.params", default=None) or {}
    arguments = [f"{key}={value}" for key, value in params.items()] + overrides
    parser = OverridesParser.create(config_loader=hydra.config_loader)
    parsed = parser.parse_overrides(arguments)
    jobs = BasicSweeper.split_arguments(parsed, None)[0]
    if len(jobs) <= MAX_SWEEP_JOBS_CHECKED:
        return jobs
    # Too many to compose one by one: the group choices decide which files are read; the other values
    # are checked as text (hydra.overrides.task of the master config) and by the job's own validation.
    groups = [o for o in parsed if o.is_sweep_override() and hydra.config_loader.repository.group_exists(o.key_or_group)]
    fixed = [f"{o.get_key_element()}={o.get_value_element_as_str()}" for o in parsed if not o.is_sweep_override()]
    choices = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in groups]
    return [fixed + list(combo) for combo in itertools.product(*choices)]


def preflight(
    entry_main: Callable[..., Any],
    config_name: str,
    config_path: str,
    validate: Callable[[DictConfig], None],
    argv: Sequence[str] | None = None,
) -> None:
    """Compose the config `hydra.main(config_path, config_name)(entry_main)` will run with `argv`
    (default: sys.argv[1:]) and check it; on a problem print one line and exit with code 2."""
    entry = getattr(entry_main, "__module__", "grit_exp")
    if entry == "__main__":  # `python -m grit_exp.train`: the module's real name
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        entry = spec.name if spec is not None else "grit_exp"
    try:
        _preflight(entry_main, config_name, config_path, validate, list(sys.argv[1:] if argv is None else argv))
    except GritError as error:
        from grit_exp.api_keys import redact

        if full_tracebacks():
            raise
        sys.stderr.write(f"{entry}: error: {redact(one_line(str(error)))}\n")
        raise SystemExit(EXIT_USER_ERROR) from None


def _preflight(
    entry_main: Callable[..., Any], config_name: str, config_path: str, validate: Callable[[DictConfig], None],
    argv: list[str],
) -> None:
    import os

    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import (
        create_automatic_config_search_path,
        detect_calling_file_or_module_from_task_function,
        detect_task_name,
        get_args_parser,
    )
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    args = get_args_parser().parse_args(argv)
    if args.help or args.hydra_help or args.shell_completion or args.experimental_rerun:
        return
    config_name = args.config_name or config_name
    config_path = args.config_path if args.config_path is not None else config_path
    calling_file, calling_module = detect_calling_file_or_module_from_task_function(_hydra_task_function(entry_main))
    search_path = create_automatic_config_search_path(calling_file, calling_module, config_path)
    if args.config_dir is not None:
        from hydra.core.config_search_path import SearchPathQuery

        search_path.prepend(provider="command-line", path=f"file://{os.path.abspath(args.config_dir)}",
                            anchor=SearchPathQuery(provider="schema"))
    shows_only = args.cfg is not None or args.info is not None
    overrides = list(args.overrides)
    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2(task_name=detect_task_name(calling_file, calling_module), config_search_path=search_path)
        try:
            mode = hydra.get_mode(config_name=config_name, overrides=overrides)
            multirun = not shows_only and (args.multirun or mode == RunMode.MULTIRUN)
            run_mode = RunMode.MULTIRUN if multirun else RunMode.RUN
            cfg = hydra.compose_config(config_name=config_name, overrides=overrides, run_mode=run_mode)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            raise _compose_error(error) from None
        _check_secrets(cfg, "")
        if shows_only:
            check_enumerated_values(cfg)
            return
        if not multirun:
            validate(cfg)
            return
        try:
            jobs = _sweep_jobs(hydra, cfg, overrides)
        except HydraException:
            jobs = []  # a sweeper plugin's own sweep syntax: the master config and the raw overrides were checked
        for job in jobs:
            where = f" (sweep job {' '.join(job)})"
            try:
                job_cfg = hydra.config_loader.load_sweep_config(cfg, job)
            except (HydraException, OmegaConfBaseException, ValueError) as error:
                raise PreflightError(f"{where.strip(' ()')}: {_compose_error(error)}") from None
            _check_secrets(job_cfg, where)
            try:
                validate(job_cfg)
            except GritError as error:
                from grit_exp.api_keys import redact

                # one invalid point must not stop the others: it runs, fails with this line, and the
                # sweep summary lists it as failed (a literal secret or a broken override still stops all)
                sys.stderr.write(f"warning: {where.strip(' ()')} will fail: {redact(one_line(str(error)))}\n")
    finally:
        GlobalHydra.instance().clear()
