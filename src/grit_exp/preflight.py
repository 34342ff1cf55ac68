"""The entry points' guard: check a config before Hydra runs (`preflight`), and turn the toolkit's own
errors during the run into one line (`reported_user_errors`).

Hydra writes `.hydra/{config,hydra,overrides}.yaml` (and a sweep's `multirun.yaml`) before the task
function runs, and prints the config for `--cfg` / `--info` without running it at all. A check inside
the task function, or a Hydra callback declared in the primary config (absent from a saved
`.hydra/config.yaml` reused with `--config-path RUN/.hydra --config-name config`), therefore misses
some ways a config reaches Hydra. `preflight(...)`, in each Hydra entry point's `__main__` block,
composes the config exactly as `hydra.main` will (same command-line parser, search path, config name
and overrides, through Hydra's own `Hydra` object), then, before anything is printed or written:

- refuses literal secrets (`grit_exp.api_keys.refuse_literal_secrets`) in the composed config and
  in the raw overrides, for every way: command line, experiment file, saved config, `--cfg job|hydra|all`,
  `--info`, and `--multirun` (every job of the sweep is composed, as Hydra's sweeper would);
- converts the config to the entry point's typed schema (`grit_exp.config.typed.to_typed`, as the task
  function will) and runs the entry point's validation on it (`--cfg` / `--info`: `check_shown` on the
  DictConfig only, so an incomplete config can still be shown), so that a bad value fails before any
  data or model is touched. The task
  function then skips its own validation (`validated_before_hydra`); it still validates the jobs
  preflight did not run here (each job of a sweep, a SLURM job).

A problem is one line on stderr and exit code 2; nothing has been written. Compose errors (an
unknown group option, a misspelled key, a wrong type, a value outside an enum) are reported the same
way. `--help` and shell completion are left to Hydra.

Inside the task function, `reported_user_errors` turns a `GritError` into a single line on stderr
(with the run's log file, when there is one), writes the same line into that log file, and exits
with `EXIT_USER_ERROR` (2). Any other exception is a bug or a failure of the environment and keeps its
traceback. `HYDRA_FULL_ERROR=1` (Hydra's own switch for complete stack traces) shows the traceback
of a `GritError` too.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from grit_exp.api_keys import redact, refuse_literal_secrets
from grit_exp.config.entries import check_shown
from grit_exp.config.typed import to_typed
from grit_exp.errors import EXIT_USER_ERROR, GritError, PreflightError, one_line

MAX_SWEEP_JOBS_CHECKED = 512  # a larger sweep: its group choices are composed, its values checked as text

log = logging.getLogger("grit_exp")
_validated_before_hydra = False  # preflight validated the single run this process is about to start


def validated_before_hydra() -> bool:
    """True when `preflight` validated, in this process, the single run the task function now runs.

    False for each job of a sweep (preflight only warned about them) and for a job started elsewhere
    (a SLURM job runs the task function without the `__main__` block): those validate in the task."""
    return _validated_before_hydra


def _hydra_task_function(entry_main: Callable[..., Any]) -> Callable[..., Any]:
    return getattr(entry_main, "__wrapped__", entry_main)  # hydra.main wraps the task function


def _value_outside_enum(error: BaseException) -> str | None:
    """`key='value' is not valid; choose one of ...` when composing failed on a value outside a schema's
    enum (OmegaConf's own message spans lines and names the schema class), else None."""
    from omegaconf.nodes import EnumNode

    seen: BaseException | None = error
    while seen is not None:
        node, key = getattr(seen, "child_node", None), getattr(seen, "full_key", None)
        if isinstance(node, EnumNode) and key:
            choices = ", ".join(repr(member.value) for member in node.enum_type)
            return f"{key}={getattr(seen, 'value', None)!r} is not valid; choose one of {choices}"
        seen = seen.__cause__ or seen.__context__
    return None


def _compose_error(error: Exception) -> PreflightError:
    enum_problem = _value_outside_enum(error)
    if enum_problem:
        return PreflightError(enum_problem)
    cause = error.__cause__
    text = str(error) if cause is None or str(cause) in str(error) else f"{error} ({cause})"
    return PreflightError(f"the config does not compose: {one_line(text)}")


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
    validate: Callable[[Any], None],
    schema: type | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Compose the config `hydra.main(config_path, config_name)(entry_main)` will run with `argv`
    (default: sys.argv[1:]), convert it to `schema` (None: `validate` takes the DictConfig) and check it;
    on a problem print one line and exit with code 2."""
    entry = getattr(entry_main, "__module__", "grit_exp")
    if entry == "__main__":  # `python -m grit_exp.train`: the module's real name
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        entry = spec.name if spec is not None else "grit_exp"
    try:
        typed_validate = validate if schema is None else (lambda cfg: validate(to_typed(cfg, schema)))
        _preflight(entry_main, config_name, config_path, typed_validate, list(sys.argv[1:] if argv is None else argv))
    except GritError as error:
        if full_tracebacks():
            raise
        sys.stderr.write(f"{entry}: error: {redact(one_line(str(error)))}\n")
        raise SystemExit(EXIT_USER_ERROR) from None


def _preflight(
    entry_main: Callable[..., Any], config_name: str, config_path: str, validate: Callable[[DictConfig], None],
    argv: list[str],
) -> None:
    global _validated_before_hydra
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
        refuse_literal_secrets(cfg)
        if shows_only:
            check_shown(cfg)
            return
        if not multirun:
            validate(cfg)
            _validated_before_hydra = True
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
            refuse_literal_secrets(job_cfg, where)
            try:
                validate(job_cfg)
            except GritError as error:
                # one invalid point must not stop the others: it runs, fails with this line, and the
                # sweep summary lists it as failed (a literal secret or a broken override still stops all)
                sys.stderr.write(f"warning: {where.strip(' ()')} will fail: {redact(one_line(str(error)))}\n")
    finally:
        GlobalHydra.instance().clear()


# ---------------------------------------------------------------------------------------------
# errors during the run
# ---------------------------------------------------------------------------------------------


def run_log_files() -> list[Path]:
    """The log files the root logger writes (Hydra's `<run dir>/<job name>.log` inside a task)."""
    return [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def report_user_error(error: BaseException, entry: str) -> None:
    """Write the error as one line into the run's log file(s) and onto stderr (naming the log file)."""
    message = redact(one_line(str(error)))
    root = logging.getLogger()
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in root.handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()
    logs = run_log_files()
    where = f"  (log: {logs[0]})" if logs else ""
    sys.stderr.write(f"grit_exp.{entry}: error: {message}{where}\n")
    sys.stderr.flush()


@contextmanager
def reported_user_errors(entry: str) -> Iterator[None]:
    """Inside an entry point: a `GritError` becomes one line and exit code 2; anything else propagates."""
    try:
        yield
    except GritError as error:
        report_user_error(error, entry)
        if full_tracebacks() or in_sweep_job():
            raise  # a sweep job: the sweeper records the point as failed and goes on with the others
        raise SystemExit(EXIT_USER_ERROR) from None


def in_sweep_job() -> bool:
    """True inside one job of a Hydra multirun."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    except ImportError:
        return False


def full_tracebacks() -> bool:
    """Hydra's switch: HYDRA_FULL_ERROR=1 asks for complete stack traces."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"
