"""Find evaluation results in run and multirun directories and pair each with its saved config.

A result is one `metrics.json` (written by `grit_exp.evaluate` at `<run>/`, or by a training run at
`<run>/eval/step_<N>/`) together with the `.hydra/config.yaml` of the run that wrote it, which names
the model, prompt, checkpoint and experiment. A training run with no `metrics.json` but `eval/...`
records in its `metrics.jsonl` (the in-training quick evaluation) yields a "quick_eval" result from
its last evaluated step, marked as such. Directories are searched recursively, so a multirun
folder (numbered subdirectories) works like a list of runs; `find_sweep_dirs` finds the multirun
folders that hold a sweep summary (the report prints them too).

Each result also says how it was trained (`RunResult.training`: the reward preset, advantage eps and
batch of the training run's saved config, methods.training_label) and scored (`RunResult.scoring`:
the judge preset and the rule for answers without `<answer>`, from metrics.json `_meta`; a quick
evaluation has no `_meta` and takes them from the run's config).

The Table 1 row of a result is `table1.model` / `table1.method` from the config when set (the
evaluation experiments, conf/eval_experiment/table1_*, set them), else `model.name` and the method the weights stand for
(`methods.py`: GRIT only for GRPO-trained weights; a base model with the GRIT prompt is CoT).
A training run's `eval/untrained/` is included with `all_steps`.

Left out: laying out tables (`table1.py`) and plotting (`curves.py`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from grit_exp.reporting.methods import run_method, training_config, training_label

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
CURVES_FILE = "metrics.jsonl"
SWEEP_SUMMARY_FILE = "sweep_summary.json"  # written at the end of a multirun (grit_exp.cluster.sweep.summary)
CONFIG_FILE = Path(".hydra") / "config.yaml"
STEP_DIR = re.compile(r"^step_(\d+)$")
PRUNED_DIRS = {"checkpoints", "images", "__pycache__"}  # never hold results; can be large
KINDS = ("evaluate", "train_eval", "quick_eval", "untrained_eval")  # untrained_eval: <run>/eval/untrained/
UNTRAINED_DIR = "untrained"


class ReportError(ValueError):
    """A directory given to the report cannot be read; the message names it and what was expected."""


@dataclass
class RunResult:
    """The evaluation numbers of one run (or one evaluated step of a training run) and where they came from."""

    source: Path  # the folder holding metrics.json (quick_eval: the run folder)
    run_dir: Path  # the folder holding .hydra/config.yaml
    kind: str  # one of KINDS
    step: int | None  # training step for train_eval / quick_eval results
    model: str  # Table 1 model key, e.g. "qwen2_5_vl_3b"
    method: str  # Table 1 method key, e.g. "grit"
    prompt: str
    model_path: str  # the weights evaluated: eval.checkpoint when set, else model.path (as configured)
    experiment: str | None
    note: str
    judge: str  # how ACC was judged, e.g. "openai:gpt-4o" or "rules"
    datasets: dict[str, dict[str, Any]]  # dataset name -> metrics (see metrics.json)
    meta: dict[str, Any] = field(default_factory=dict)
    training: str = ""  # the recipe that trained the weights (methods.training_label), e.g. "reward=grit_paper, ..."
    scoring: str = ""  # how ACC was scored (`scoring_label`): the judge preset and the untagged-answer rule

    @property
    def label(self) -> str:
        """A short, unique-enough name: the last two folders of the run, plus the step when there is one."""
        parts = self.run_dir.resolve().parts[-2:]
        name = "/".join(parts)
        if self.kind == "untrained_eval":
            return f"{name}@untrained"
        return f"{name}@{self.step}" if self.step is not None and self.kind != "evaluate" else name


# ----------------------------------------------------------------------------------------- finding


def _walk(root: Path) -> Iterable[tuple[Path, list[str]]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in PRUNED_DIRS)
        yield Path(dirpath), filenames


def find_result_dirs(roots: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    """(folders holding metrics.json, folders holding metrics.jsonl) under `roots`, recursively, sorted.

    A root may also be a metrics.json file itself. A root that does not exist raises ReportError."""
    metric_dirs: set[Path] = set()
    curve_dirs: set[Path] = set()
    for root in map(Path, roots):
        if not root.exists():
            raise ReportError(f"{root}: no such file or directory")
        if root.is_file():
            if root.name != METRICS_FILE:
                raise ReportError(f"{root}: expected a run directory or a {METRICS_FILE} file")
            metric_dirs.add(root.parent)
            continue
        for folder, files in _walk(root):
            if METRICS_FILE in files:
                metric_dirs.add(folder)
            if CURVES_FILE in files:
                curve_dirs.add(folder)
    return sorted(metric_dirs), sorted(curve_dirs)


def find_sweep_dirs(roots: Sequence[Path]) -> list[Path]:
    """Folders under `roots` (or the roots themselves) holding a sweep_summary.json, sorted."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if root.is_dir():
            found.update(folder for folder, files in _walk(root) if SWEEP_SUMMARY_FILE in files)
    return sorted(found)


def run_dir_of(source: Path) -> Path:
    """The run folder whose .hydra/config.yaml describes `source`: itself, or for `<run>/eval/step_N` the run."""
    if (source / CONFIG_FILE).is_file():
        return source
    in_eval = (STEP_DIR.match(source.name) or source.name == UNTRAINED_DIR) and source.parent.name == "eval"
    if in_eval and (source.parent.parent / CONFIG_FILE).is_file():
        return source.parent.parent
    where = f"{source / CONFIG_FILE}"
    if STEP_DIR.match(source.name) and source.parent.name == "eval":
        where += f" or {source.parent.parent / CONFIG_FILE}"
    raise ReportError(
        f"{source}: no saved config ({where} is missing). The report reads the model, prompt and checkpoint "
        "of a result from the config Hydra saves in the run directory; copy the run's .hydra/ folder along "
        "with its results, or leave this directory out."
    )


# ----------------------------------------------------------------------------------------- reading


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    except Exception as err:  # noqa: BLE001  (any parse error: re-raised with the file named)
        raise ReportError(f"{path}: cannot be read as YAML: {err}") from err
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a mapping at the top level")
    return data


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}:{err.lineno}: not valid JSON: {err.msg}") from err


def read_metrics_json(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(datasets, _meta) of a metrics.json; every key not starting with "_" must map to an object."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected an object mapping dataset names to metrics")
    datasets: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name.startswith("_"):
            continue
        if not isinstance(value, dict):
            raise ReportError(f"{path}: entry {name!r} should be an object of metrics, got {type(value).__name__}")
        datasets[name] = value
    meta = data.get("_meta") or {}
    return datasets, meta if isinstance(meta, dict) else {}


def read_curve_records(run_dir: Path) -> list[dict[str, Any]]:
    """The records of `<run_dir>/metrics.jsonl` (empty when absent); a bad line raises naming file:line."""
    path = run_dir / CURVES_FILE
    if not path.exists():
        return []
    records = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ReportError(f"{path}:{lineno}: not valid JSON: {err.msg}") from err
        if not isinstance(record, dict) or "step" not in record:
            raise ReportError(f"{path}:{lineno}: a record must be an object with a 'step' key")
        records.append(record)
    return records


def quick_eval_datasets(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`eval/<dataset>/<metric>` keys of one metrics.jsonl record, as {dataset: {metric: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in record.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "eval":
            out.setdefault(parts[1], {})[parts[2]] = value
    return out


def _hydra_choice(run_dir: Path, group: str) -> str | None:
    path = run_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return None
    choices = _load_yaml(path).get("hydra", {}).get("runtime", {}).get("choices", {})
    value = choices.get(group)
    return None if value in (None, "null") else str(value)


def _config_judge(cfg: dict[str, Any]) -> str:
    judge = cfg.get("judge") or {}
    kind = judge.get("kind", "unknown")
    return str(kind) if kind == "rules" else f"{kind}:{judge.get('model')}"


def scoring_label(meta: dict[str, Any], cfg: dict[str, Any] | None = None) -> str:
    """"judge=paper, untagged=zero", "judge=code, whole response", ... from metrics.json `_meta`; with `cfg`
    (a quick evaluation, no `_meta`) from the saved config, marked "(config)". "unrecorded" where neither says."""
    from grit_exp.config.judge import judge_settings

    if cfg is not None:
        preset = judge_settings(cfg.get("judge") or {}).get("preset")
        judged = (cfg.get("prompt") or {}).get("judged_answer")
        untagged = (cfg.get("eval") or {}).get("untagged_answer")
    else:
        preset, judged, untagged = meta.get("judge_preset"), meta.get("judged_answer"), meta.get("untagged_answer")
    answer = "whole response" if judged == "whole_response" else f"untagged={untagged or 'unrecorded'}"
    return f"judge={preset or 'unrecorded'}, {answer}" + (" (config)" if cfg is not None else "")


def describe_run(run_dir: Path, kind: str = "evaluate", step: int | None = None) -> dict[str, Any]:
    """Model, method, prompt, checkpoint, experiment and note of a run, from its saved config; the method
    from how the weights were made (`methods.run_method`), never from the prompt alone."""
    cfg = _load_yaml(run_dir / CONFIG_FILE)
    model_cfg, prompt_cfg = cfg.get("model") or {}, cfg.get("prompt") or {}
    table1 = cfg.get("table1") or {}
    model = table1.get("model") or model_cfg.get("name")
    prompt = prompt_cfg.get("name")
    if not model or not prompt:
        raise ReportError(f"{run_dir / CONFIG_FILE}: model.name and prompt.name are needed to place the run in Table 1")
    checkpoint = (cfg.get("eval") or {}).get("checkpoint") or model_cfg.get("path", "")  # eval.yaml: eval.checkpoint
    return {
        "model": str(model),
        "method": run_method(cfg, kind, step, _load_yaml),
        "prompt": str(prompt),
        "model_path": str(checkpoint),
        # an evaluation's `eval_experiment=...`, a training run's `experiment=...`
        "experiment": _hydra_choice(run_dir, "eval_experiment") or _hydra_choice(run_dir, "experiment"),
        "note": str(cfg.get("experiment_note") or ""),
        "config_judge": _config_judge(cfg),
        "training": training_label(training_config(cfg, kind, step, _load_yaml)),
        "config": cfg,
    }


def _result(source: Path, run_dir: Path, kind: str, step: int | None, datasets: dict, meta: dict) -> RunResult:
    info = describe_run(run_dir, kind, step)
    if kind == "quick_eval":
        judge = f"{info['config_judge']} (quick eval)"
    elif meta.get("judge"):
        judge = str(meta["judge"])
    else:
        judge = f"{info['config_judge']} (config; metrics.json has no _meta.judge)"
    return RunResult(
        source=source, run_dir=run_dir, kind=kind, step=step, model=info["model"], method=info["method"],
        prompt=info["prompt"], model_path=info["model_path"], experiment=info["experiment"], note=info["note"],
        judge=judge, datasets=datasets, meta=meta, training=info["training"],
        scoring=scoring_label(meta, info["config"] if kind == "quick_eval" else None),
    )


def collect_results(roots: Sequence[Path | str], all_steps: bool = False, skip_incomplete: bool = False) -> list[RunResult]:
    """Every evaluation result under `roots`.

    For a training run only its last evaluated step is kept unless `all_steps`. A result whose run has
    no saved config raises ReportError naming the folder, or with `skip_incomplete` is logged and skipped.
    Raises ReportError when nothing at all is found."""
    metric_dirs, curve_dirs = find_result_dirs([Path(r) for r in roots])
    results: list[RunResult] = []
    covered_runs: set[Path] = set()

    def attempt(make: Any) -> None:
        try:
            results.append(make())
        except ReportError as err:
            if not skip_incomplete:
                raise
            log.warning("skipped: %s", err)

    by_run: dict[Path, list[tuple[int, Path]]] = {}
    for source in metric_dirs:
        match = STEP_DIR.match(source.name)
        if source.name == UNTRAINED_DIR and source.parent.name == "eval":
            covered_runs.add(source.parent.parent)
            if all_steps:
                attempt(lambda source=source: _result(source, run_dir_of(source), "untrained_eval", None,
                                                      *read_metrics_json(source / METRICS_FILE)))
            continue
        if match and source.parent.name == "eval":
            by_run.setdefault(source.parent.parent, []).append((int(match.group(1)), source))
            covered_runs.add(source.parent.parent)
            continue
        covered_runs.add(source)

        def make_eval(source: Path = source) -> RunResult:
            return _result(source, run_dir_of(source), "evaluate", None, *read_metrics_json(source / METRICS_FILE))

        attempt(make_eval)
    for _run, steps in sorted(by_run.items()):
        chosen = sorted(steps) if all_steps else [max(steps)]
        for step, source in chosen:

            def make_step(source: Path = source, step: int = step) -> RunResult:
                return _result(source, run_dir_of(source), "train_eval", step, *read_metrics_json(source / METRICS_FILE))

            attempt(make_step)
    for run in curve_dirs:
        if run in covered_runs:
            continue
        evals = [r for r in read_curve_records(run) if quick_eval_datasets(r)]
        for record in evals if all_steps else evals[-1:]:

            def make_quick(run: Path = run, record: dict = record) -> RunResult:
                return _result(run, run_dir_of(run), "quick_eval", int(record["step"]), quick_eval_datasets(record), {})

            attempt(make_quick)
    if not results and not skip_incomplete:
        raise ReportError(
            f"no evaluation results under {', '.join(map(str, roots))}: expected {METRICS_FILE} files "
            f"(grit_exp.evaluate output, or <run>/eval/step_<N>/) or a {CURVES_FILE} with eval/... records"
        )
    return results


def newest_run_dir(root: Path | str) -> Path | None:
    """The most recently modified folder under `root` holding a metrics.json or metrics.jsonl (None if none)."""
    root = Path(root)
    if not root.is_dir():
        return None
    metric_dirs, curve_dirs = find_result_dirs([root])
    candidates = {run_dir_or_self(d) for d in [*metric_dirs, *curve_dirs]}
    return max(candidates, key=lambda d: (max(f.stat().st_mtime for f in d.iterdir()), str(d)), default=None)


def run_dir_or_self(folder: Path) -> Path:
    """`<run>` for `<run>/eval/step_<N>`, else the folder itself."""
    return folder.parent.parent if STEP_DIR.match(folder.name) and folder.parent.name == "eval" else folder
