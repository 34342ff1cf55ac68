"""The paper's recipe on the real-width Qwen2.5-VL-3B, through the real entry point (slow).

`python -m grit_exp.train experiment=grit_qwen2_5_vl_3b model=real_width_qwen2_5_vl` under torchrun:
DeepSpeed ZeRO-2 (`cluster=node8`, the experiment's), the paper's G = 4, beta 0.01 with a reference
model, micro-batches of 4, the released reward terms (`grit_code`) with the rules judge, on the
real-width, reduced-depth model (hidden 2048, the 151,936-token vocabulary and real tokenizer, 2 text
layers, 2 vision blocks: `grit_exp.models.real_width`). Two variants:

- LoRA (the q/k/v/o adapters) on 2 CPU processes over gloo: 2 GRPO steps, the evaluation at step 2, the
  checkpoint (merged `model/` and `adapter/`);
- full fine-tuning on 1 process under ZeRO-2, 1 prompt x G = 4 per step (fp32 weights, gradients and
  AdamW state for 0.54 B parameters plus the reference model: ~9 GB RSS, more than 2 processes can share
  with the other jobs of this 24 GB machine; the 2-process full fine-tune is the same engine code path
  as LoRA's ZeRO-2 run, tested at tiny size in tests/training/).

Each then reloads the saved step: `python -m grit_exp.evaluate` on `checkpoints/step_2/model` writes
the same greedy completions as the run's own evaluation at step 2. For CPU, float32 without autocast
(bf16 autocast on this CPU ran the LoRA variant at ~100 s per step instead of ~20 s), 16 new tokens,
2 prompts x G = 4 per step, 2 eval rows. A test-only reward term (tests/training/spread_term.py, loaded
in every process by the launcher) gives every group reward spread, so that the random model's steps
have non-zero advantages and the weights move. Wall time: see TIMINGS (printed with -s). Measured
2026-12-07 on the shared 2-core machine: building the model 36-39 s; LoRA on 2 processes 188 s (steps of
~35 s: rollout 15, update 19) + 42 s for the evaluate entry; full fine-tuning with 2 prompts per step
506 s (steps of 150-185 s, 130-157 s of it the update, with 1 thread and another job compiling beside
it) + 47 s, hence 1 prompt per step here. A variant needs its free memory (VARIANTS) or is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.torchrun import ROOT, launch

sys.path.insert(0, str(ROOT / "tests" / "training"))
from spread_term import TERM  # noqa: E402

pytestmark = pytest.mark.slow

RECIPE = ["experiment=grit_qwen2_5_vl_3b", "model=real_width_qwen2_5_vl", "dataset=synthetic", "judge=rules",
          "model.attn_implementation=sdpa"]
CPU = ["model.dtype=float32", "trainer.mixed_precision=no"]
SIZE = ["trainer.max_steps=2", "trainer.prompts_per_step=2", "trainer.micro_batch_size=4", "rollout.max_new_tokens=16",
        "trainer.eval_every=2", "trainer.save_every=2", "trainer.eval_on_start=false", "dataset.synthetic.num_val=2",
        "dataset.synthetic.num_train=64", "eval.num_pictures=2", "eval.batch_size=2"]
SPREAD = [f"+reward.weights.{TERM}=1.0", f"+reward.options.{TERM}.dataset='*'"]
# processes, overrides, GB of free memory needed, completions per step
VARIANTS = {"lora_zero2_2proc": (2, ["model.lora.enabled=true"], 6, 8),
            "full_zero2_1proc": (1, ["trainer.prompts_per_step=1"], 14, 4)}
TIMINGS: dict[str, float] = {}


def available_gb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**30


def completions(samples: Path) -> list[str]:
    return [json.loads(line)["completion"] for line in samples.read_text().splitlines()]


def first_tensor(directory: Path, name: str):
    from safetensors import safe_open

    with safe_open(str(directory / "model.safetensors"), framework="pt") as f:
        return f.get_tensor(name)


@pytest.fixture(scope="module")
def real_width_model(grit_cache) -> Path:
    from grit_exp.models.tiny import ensure_tiny_model

    started = time.perf_counter()
    path = ensure_tiny_model("real_width_qwen2_5_vl", grit_cache / "models" / "real_width_qwen2_5_vl")
    TIMINGS["build the real-width model"] = time.perf_counter() - started
    return path


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_two_grpo_steps_evaluation_and_the_saved_step(variant, real_width_model, grit_cache, tmp_path) -> None:
    processes, extra, needs_gb, completions_per_step = VARIANTS[variant]
    if available_gb() < needs_gb:
        pytest.skip(f"{variant} needs ~{needs_gb} GB of free memory, {available_gb():.1f} GB available now")
    run = tmp_path / "run"
    started = time.perf_counter()
    code, out = launch(processes, grit_cache, [*RECIPE, *CPU, *SIZE, *SPREAD, *extra, f"hydra.run.dir={run}"],
                       timeout=900)
    TIMINGS[f"{variant}: train 2 steps + eval + save"] = time.perf_counter() - started
    assert code == 0, out[-5000:]
    assert f"deepspeed ZeRO-2, {processes} process(es)" in out

    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [s for s in steps if "train/loss" in s]
    assert [s["step"] for s in trained] == [1, 2]
    assert all(s["train/global_completions"] == completions_per_step and s["train/frac_zero_std"] == 0 for s in trained)
    assert all(s["train/grad_norm"] > 0 for s in trained), "the steps had reward spread: the gradient is not zero"

    checkpoint = run / "checkpoints" / "step_2"
    name = "model.layers.0.self_attn.q_proj.weight"
    before, after = first_tensor(real_width_model, name), first_tensor(checkpoint / "model", name)
    assert before.shape == after.shape == (2048, 2048)
    assert not after.equal(before), "the saved step's weights moved (LoRA: the merged adapters)"
    if "lora" in variant:
        assert (checkpoint / "adapter" / "adapter_model.safetensors").is_file()
    else:
        assert not first_tensor(checkpoint / "model", "model.embed_tokens.weight").equal(
            first_tensor(real_width_model, "model.embed_tokens.weight"))

    # the checkpoint reloads: the evaluate entry on step_2/model writes the run's own step-2 greedy completions
    evaluated = tmp_path / "eval"
    started = time.perf_counter()
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "grit_exp.evaluate", "model=real_width_qwen2_5_vl", f"model.path={checkpoint / 'model'}",
         *CPU[:1], "model.attn_implementation=sdpa", "dataset=synthetic", "dataset.synthetic.num_val=2",
         "dataset.synthetic.num_train=64", "judge=rules", "rollout.max_new_tokens=16", "eval.num_pictures=2",
         "eval.batch_size=2", f"hydra.run.dir={evaluated}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    TIMINGS[f"{variant}: evaluate step_2/model"] = time.perf_counter() - started
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    ours = completions(run / "eval" / "step_2" / "samples.jsonl")
    assert len(ours) == 2 and all(ours)
    assert completions(evaluated / "samples.jsonl") == ours


def test_print_timings() -> None:
    """The wall time of each part (pytest -s shows it; the slow suite's budget)."""
    for name, seconds in TIMINGS.items():
        print(f"{name}: {seconds:.0f} s")
