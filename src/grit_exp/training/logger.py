"""Run logging: `metrics.jsonl` always, Weights & Biases when `logger=wandb`, a console progress bar.

Every logged step is one JSON object in `<run>/metrics.jsonl` with stable key names
("train/reward", "train/reward/<term>", "train/kl", "time/rollout_s", "eval/<dataset>/<metric>", ...).
W&B runs offline unless WANDB_MODE says otherwise; the config it receives is the resolved config
with secrets removed (keys never reach W&B); its id is kept in `<run>/wandb_id.txt`, so a resumed or
requeued run continues the same W&B run (inside a sweep: named after the job's overrides, grouped by
the sweep directory, grit_exp.cluster.sweep.job_record); `log_samples` logs evaluated samples as a table with
their pictures (boxes drawn and numbered) next to the completions. Only rank 0 writes. Each step's
progress line also goes through `logging` (INFO), so Hydra's job logging keeps it in <run>/train.log.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import string
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger(__name__)
SAMPLE_COLUMNS = ("index", "dataset", "picture", "question", "ground_truth", "completion", "answer", "failures", "acc",
                  "giou", "reward", "rewards")
WANDB_ID_FILE = "wandb_id.txt"
PROGRESS_KEYS = ("train/reward", "train/kl", "train/frac_zero_std", "train/sft_loss", "time/step_s")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def wandb_run_id(run_dir: Path) -> str:
    """The run's W&B id, kept in `<run>/wandb_id.txt`: a resumed or requeued run continues the same W&B run."""
    path = run_dir / WANDB_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # W&B's id alphabet
    path.write_text(run_id + "\n")
    return run_id


class RunLogger:
    def __init__(self, run_dir: Path, logger_cfg: Any, config: dict[str, Any], total_steps: int, enabled: bool = True):
        self.enabled = enabled
        self.path = run_dir / "metrics.jsonl"
        self.log_every = max(1, int(logger_cfg.log_every))
        self.wandb_run = None
        # the bar only on a terminal (None: tqdm checks); logs get the per-step `progress` line instead
        self.bar = tqdm(total=total_steps, desc="train", dynamic_ncols=True, disable=True if not enabled else None)
        if enabled and logger_cfg.kind == "wandb":
            import wandb

            from grit_exp.cluster.sweep.job_record import wandb_identity

            mode = os.environ.get("WANDB_MODE", logger_cfg.mode)
            self.wandb_run = wandb.init(
                project=logger_cfg.project, entity=logger_cfg.entity, mode=mode, dir=str(run_dir), config=config,
                id=wandb_run_id(run_dir), resume="allow", **wandb_identity(),
            )

    def log(self, step: int, metrics: dict[str, Any], force: bool = False) -> None:
        if not self.enabled or (step % self.log_every and not force):
            return
        record = {"step": step, **{k: _jsonable(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=step)

    def progress(self, step: int, metrics: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.bar.n = step
        shown = {k.split("/")[-1]: f"{metrics[k]:.3f}" for k in ("train/reward", "train/kl", "time/step_s") if k in metrics}
        self.bar.set_postfix(shown, refresh=True)
        line = " ".join(f"{k.split('/')[-1]}={metrics[k]:.4g}" for k in PROGRESS_KEYS if metrics.get(k) is not None)
        log.info("step %d/%d %s", step, self.bar.total, line)  # Hydra's job logging puts it in <run>/train.log

    def log_table(self, name: str, columns: list[str], rows: list[list[Any]]) -> None:
        """Completion tables for W&B (images as wandb.Image when given as PIL images)."""
        if self.wandb_run is None:
            return
        import wandb

        converted = [[wandb.Image(c) if hasattr(c, "save") and hasattr(c, "size") else c for c in r] for r in rows]
        self.wandb_run.log({name: wandb.Table(columns=columns, data=converted)})

    def log_samples(self, name: str, records: list[dict[str, Any]]) -> None:
        """Evaluated sample records (samples.jsonl lines) as a W&B table: each picture with its boxes
        drawn and numbered (as in report.html) next to the question, the completion and the scores."""
        if self.wandb_run is None:
            return
        from grit_exp.evaluation.pictures import sample_image
        from grit_exp.evaluation.samples import failure_kinds
        from grit_exp.rewards.answer_terms import answer_text

        rows = []
        for r in records:
            picture = None if r.get("image_missing") else sample_image(r)
            completion = r.get("completion")
            rows.append([r["index"], r["dataset"], picture, r["question"], r["answer"], completion,
                         answer_text(completion) if completion else None, ", ".join(failure_kinds(r)) or "ok",
                         r["metrics"].get("acc"), r["metrics"].get("giou"), r.get("reward"), json.dumps(r.get("rewards"))])
        self.log_table(name, list(SAMPLE_COLUMNS), rows)

    def close(self) -> None:
        self.bar.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def truncate_metrics_after(path: Path, step: int) -> None:
    """On resume, drop records logged after the checkpoint's step (they will be logged again)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))
