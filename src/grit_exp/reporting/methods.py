"""Which method a result's weights stand for (the Table 1 row), from how they were made, not the prompt.

A prompt alone never makes a row "GRIT": the base model with the GRIT prompt is the paper's
Chain-of-Thought baseline (same suffix, untrained weights). The method is decided, first rule wins:

1. `table1.method` in the saved config (the evaluation experiments conf/eval_experiment/table1_* set it): taken as written.
2. A training run's own evaluations: `eval/untrained/` is the base model (rule 4); step 0 is the
   warm-start checkpoint (SFT on the gold chains: "sft") when a warm start ran, else the base model;
   later steps are the run's algorithm: GRPO variants (grpo, dr_grpo, dapo) -> "grit", sft -> "sft".
3. An evaluation of a checkpoint: `<run>/checkpoints/step_<N>/model` -> that run's algorithm (read
   from `<run>/.hydra/config.yaml`; "trained" when the config is gone); a cached warm start
   (`.../warm_start/<fingerprint>`) -> "sft"; a released GRIT checkpoint (`GRIT-<n>-...`, e.g.
   yfan1997/GRIT-20-Qwen2.5-VL-3B) -> "grit".
4. Otherwise the weights are the base model: the prompt names the baseline, with grit -> "cot"; the
   SFT prompt on untrained weights is "sft_prompt_untrained", which is no row of the paper.

`training_label` says, from the same saved configs, which recipe trained the weights: the reward
preset (`reward.name`: grit_paper / grit_code), the advantage eps and the batch per optimizer step
(prompts x G), as the training run's .hydra/config.yaml has them; "untrained" for a base model,
"released checkpoint" for the authors' weights (their recipe is grit_code's).

Left out: finding results (`collect.py`) and laying them out (`table1.py`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

TRAINED_METHODS = {"grpo": "grit", "dr_grpo": "grit", "dapo": "grit", "sft": "sft"}
BASE_PROMPT_METHODS = {"grit": "cot", "cot": "cot", "direct": "direct", "icl1": "icl1", "sft": "sft_prompt_untrained"}
RUN_CHECKPOINT = re.compile(r"^(?P<run>.+)/checkpoints/step_\d+(/model)?/?$")
WARM_START_CHECKPOINT = re.compile(r"/warm_start/[^/]+/?$")
RELEASED_GRIT = re.compile(r"(^|/)GRIT-\d+-", re.IGNORECASE)


def base_model_method(prompt: str) -> str:
    return BASE_PROMPT_METHODS.get(prompt, prompt)


def _algorithm_method(cfg: dict[str, Any]) -> str:
    name = str((cfg.get("algorithm") or {}).get("name", ""))
    return TRAINED_METHODS.get(name, f"trained ({name})" if name else "trained")


def _checkpoint_method(path: str, read_config: Any) -> str | None:
    """The method of a checkpoint path (rule 3), or None when nothing says it was trained."""
    match = RUN_CHECKPOINT.match(path.replace("\\", "/"))
    if match:
        config = Path(match.group("run")) / ".hydra" / "config.yaml"
        return _algorithm_method(read_config(config)) if config.is_file() else "trained"
    if WARM_START_CHECKPOINT.search(path):
        return "sft"
    if RELEASED_GRIT.search(path):
        return "grit"
    return None


def run_method(cfg: dict[str, Any], kind: str, step: int | None, read_config: Any) -> str:
    """The Table 1 method key of one result (see the module docstring). `kind` is a collect.KINDS
    value; `read_config(path)` reads a saved config.yaml into a dict."""
    explicit = (cfg.get("table1") or {}).get("method")
    if explicit:
        return str(explicit)
    prompt = str((cfg.get("prompt") or {}).get("name"))
    if kind == "untrained_eval":
        return base_model_method(prompt)
    if kind in ("train_eval", "quick_eval") and "algorithm" in cfg:
        if step == 0:  # before the first update: the warm start (GRPO runs), else the base model
            warm = int((cfg.get("trainer") or {}).get("warm_start_sft_steps") or 0)
            is_sft = str((cfg.get("algorithm") or {}).get("name")) == "sft"
            return "sft" if warm > 0 and not is_sft else base_model_method(prompt)
        return _algorithm_method(cfg)
    model_cfg = cfg.get("model") or {}
    path = str((cfg.get("eval") or {}).get("checkpoint") or model_cfg.get("path") or "")
    return _checkpoint_method(path, read_config) or base_model_method(prompt)


RELEASED = "released checkpoint"


def training_config(cfg: dict[str, Any], kind: str, step: int | None, read_config: Any) -> dict[str, Any] | str | None:
    """The saved config of the training that made a result's weights: a dict (empty when that run's config is
    gone), RELEASED for the authors' checkpoints, None for a base model. The same rules as `run_method`."""
    if kind == "untrained_eval":
        return None
    if kind in ("train_eval", "quick_eval") and "algorithm" in cfg:
        if step == 0 and not int((cfg.get("trainer") or {}).get("warm_start_sft_steps") or 0):
            return None
        return cfg
    model_cfg = cfg.get("model") or {}
    path = str((cfg.get("eval") or {}).get("checkpoint") or model_cfg.get("path") or "").replace("\\", "/")
    match = RUN_CHECKPOINT.match(path)
    if match:
        config = Path(match.group("run")) / ".hydra" / "config.yaml"
        return read_config(config) if config.is_file() else {}
    if RELEASED_GRIT.search(path):
        return RELEASED
    return None


def training_label(trained: dict[str, Any] | str | None) -> str:
    """"reward=grit_paper, advantage_eps=0.0001, 32 prompts x G=4 per step", "sft", "untrained", ..."""
    if trained is None:
        return "untrained"
    if isinstance(trained, str):
        return trained
    algorithm, trainer = trained.get("algorithm") or {}, trained.get("trainer") or {}
    if not algorithm:
        return "trained (its config is gone)"
    name = str(algorithm.get("name"))
    if name == "sft":
        return "sft"
    reward = (trained.get("reward") or {}).get("name", "?")
    parts = [f"reward={reward}", f"advantage_eps={algorithm.get('advantage_eps', '?')}"]
    if trainer.get("prompts_per_step") is not None:
        parts.append(f"{trainer['prompts_per_step']} prompts x G={algorithm.get('num_generations', '?')} per step")
    return (f"{name}: " if name not in ("grpo", "None") else "") + ", ".join(parts)
