"""GPU mode: GRPO steps of a real-size, randomly initialised Qwen2.5-VL-3B through the engine.

The model is built from the config written below (Qwen2.5-VL-3B-Instruct's sizes: 36 layers, hidden
2048, 16 heads / 2 KV heads, MLP 11008, vocabulary 151,936; vision tower 32 blocks of 1280) with
random weights: nothing is downloaded. The processor and tokenizer are the offline tiny model's
(ids it does not know decode to nothing). The paper's per-GPU share of a step: 4 prompts x G=4,
completions up to 1000 tokens (a random model rarely stops: nearly all run to 1000, the worst
case), micro-batches of 4, bf16 compute over fp32 masters, DeepSpeed ZeRO-2 through
`TrainingEngine` (cluster=node8), sdpa attention, beta 0.01 with a reference model. Reports seconds
per step, generated tokens per second of the rollout per GPU, tokens per second per GPU as EasyR1
counts them (prompt + response tokens, image tokens included, over the step's seconds; EasyR1
publishes ~1,800 for 3B on H100), peak GPU memory and the update's model FLOPs utilisation (MFU:
`gpu_figures.update_flops`, the prompt and its image once per group and micro-batch as the
shared-prompt pass runs them, the vision tower included; over the update's seconds and the GPU's
dense bf16 peak). One warm-up step, then timed steps; about 3-4 minutes on one H100/H200.

Run (GPU): `python benchmarks/bench_gpu.py`; on CPU `--tiny` runs the same path with a tiny config
(what tests/benchmarks/test_bench_gpu.py checks). Results in results/gpu.json (tiny: gpu_tiny.json).
Left out: several GPUs (the same code under torchrun), vLLM, flash-attention (the gpu extra), the
evaluation and checkpoints (`launchers/gpu_check.py`, `make gpu-check`, runs those stages too).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from gpu_figures import CompletionSize, easyr1_tokens, peak_tflops, rollout_sequences, update_flops  # noqa: E402, F401

from grit_exp.models.real_width import QWEN2_5_VL_3B_TEXT, QWEN2_5_VL_3B_VISION  # noqa: E402

log = logging.getLogger("bench")
RESULTS = Path(__file__).parent / "results"

# Qwen2.5-VL-3B-Instruct's config.json (grit_exp.models.real_width holds the published values)
TEXT_3B: dict[str, Any] = dict(QWEN2_5_VL_3B_TEXT)
VISION_3B: dict[str, Any] = dict(QWEN2_5_VL_3B_VISION)
# --tiny: the same structure at CPU-test size (head_dim 16: mrope_section sums to 8)
TEXT_TINY: dict[str, Any] = {**TEXT_3B, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                             "num_attention_heads": 4, "num_key_value_heads": 2,
                             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]}}
VISION_TINY: dict[str, Any] = {**VISION_3B, "depth": 2, "hidden_size": 64, "intermediate_size": 128, "num_heads": 4,
                               "out_hidden_size": 64, "fullatt_block_indexes": [1], "window_size": 56}


def build_policy(tokenizer: Any, tiny: bool, device: torch.device) -> torch.nn.Module:
    """A randomly initialised Qwen2.5-VL of the 3B (or tiny) size, fp32 master weights on `device`."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"),
        ("eos_token_id", "<|im_end|>"), ("pad_token_id", "<|endoftext|>"))}
    text = {**(TEXT_TINY if tiny else TEXT_3B), "eos_token_id": ids["eos_token_id"], "pad_token_id": ids["pad_token_id"]}
    config = Qwen2_5_VLConfig(text_config=text, vision_config=VISION_TINY if tiny else VISION_3B,
                              tie_word_embeddings=True, **ids)
    torch.manual_seed(0)
    with device:
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, attn_implementation="sdpa", dtype=torch.float32)
    model.generation_config.eos_token_id = ids["eos_token_id"]
    model.generation_config.pad_token_id = ids["pad_token_id"]
    return model


def run(args: argparse.Namespace) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir

    from grit_exp.algorithm.grpo import grpo_step
    from grit_exp.algorithm.step_modules import StepModules
    from grit_exp.cluster.engine import TrainingEngine
    from grit_exp.config import TrainConfig, validate_train
    from grit_exp.config.typed import to_typed
    from grit_exp.data.reader import load_dataset_splits
    from grit_exp.hydra_app import CONF_DIR
    from grit_exp.judge import build_judge
    from grit_exp.models import build_adapter
    from grit_exp.models.tiny import ensure_tiny_model
    from grit_exp.rollout.hf import HFRollout
    from grit_exp.training.optimizer import build_optimizer
    from grit_exp.training.run import accumulation_steps, build_scheduler

    started = time.perf_counter()
    cache = Path(os.environ.get("GRIT_EXP_CACHE", Path.home() / ".cache" / "grit_exp"))
    processor_dir = ensure_tiny_model("tiny_qwen2_5_vl", cache / "models" / "tiny_qwen2_5_vl")
    overrides = [
        "experiment=grit_qwen2_5_vl_3b", "dataset=synthetic", "judge=rules", "reward=grit_paper",
        f"model.path={processor_dir}", "model.attn_implementation=sdpa", "cluster=node8",
        f"trainer.prompts_per_step={args.prompts}", "trainer.micro_batch_size=4",
        f"rollout.max_new_tokens={args.max_new_tokens}", f"trainer.max_steps={args.warmup + args.steps}",
        "dataset.synthetic.num_val=8",
    ]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = to_typed(compose(config_name="train", overrides=overrides), TrainConfig)
    validate_train(cfg)
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=accumulation_steps(cfg, 1),
                            micro_batch_size=cfg.trainer.micro_batch_size)
    policy = build_policy(adapter.tokenizer, args.tiny, engine.device)
    reference = build_policy(adapter.tokenizer, args.tiny, engine.device).to(torch.bfloat16)
    reference.load_state_dict(policy.state_dict())
    reference = engine.prepare_frozen(reference)
    optimizer = build_optimizer(policy.parameters(), cfg.trainer.learning_rate, 0.0)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    bare = policy
    policy, optimizer = engine.prepare(policy, optimizer)
    rollout = HFRollout(adapter, cfg.rollout)
    lengths: list = []
    generate = rollout.generate
    image_token_id = bare.config.image_token_id

    def measured_generate(*a, **k):
        out = generate(*a, **k)
        lengths.append(rollout_sequences(out, image_token_id))
        return out

    rollout.generate = measured_generate  # type: ignore[method-assign]
    modules = StepModules(adapter, policy, reference, rollout, build_judge(cfg.judge), optimizer, scheduler, cfg, engine)
    cuda = engine.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(engine.device)
    setup_s = time.perf_counter() - started
    records = []
    for step in range(1, args.warmup + args.steps + 1):
        batch = [rows[(step * args.prompts + i) % len(rows)] for i in range(args.prompts)]
        metrics = grpo_step(modules, batch, step, first_prompt_index=0)
        sequences = lengths.pop()
        generated = sum(s.completion for s in sequences)
        records.append({"step": step, "step_s": metrics["time/step_s"], "rollout_s": metrics["time/rollout_s"],
                        "update_s": metrics["time/update_s"], "reference_s": metrics.get("time/reference_s"),
                        "generated_tokens": generated, "easyr1_tokens": easyr1_tokens(sequences),
                        "flops": update_flops(bare, sequences, cfg.trainer.micro_batch_size,
                                              shared_prompt=not cfg.model.gradient_checkpointing)})
        log.info("step %d: %.1f s (rollout %.1f s, %d tokens; update %.1f s)", step, metrics["time/step_s"],
                 metrics["time/rollout_s"], generated, metrics["time/update_s"])
    timed = records[args.warmup:]
    peak = peak_tflops(engine.device, args.peak_tflops)
    mfu = [r["flops"] / r["update_s"] / (peak * 1e12) for r in timed] if peak else None
    result = {
        "device": torch.cuda.get_device_name(engine.device) if cuda else str(engine.device),
        "size": "tiny" if args.tiny else "qwen2_5_vl_3b (random weights)",
        "parameters": sum(p.numel() for p in bare.parameters()),
        "engine": engine.describe(),
        "completions_per_step": args.prompts * cfg.algorithm.num_generations,
        "max_new_tokens": args.max_new_tokens,
        "s_per_step": statistics.median(r["step_s"] for r in timed),
        "rollout_s": statistics.median(r["rollout_s"] for r in timed),
        "update_s": statistics.median(r["update_s"] for r in timed),
        "generated_tokens_per_s_per_gpu": statistics.median(r["generated_tokens"] / r["rollout_s"] for r in timed),
        # EasyR1's count: prompt + response tokens (image tokens included) per second of the step, per GPU
        "easyr1_tokens_per_s_per_gpu": statistics.median(r["easyr1_tokens"] / r["step_s"] for r in timed),
        "mean_completion_tokens": statistics.mean(r["generated_tokens"] for r in timed) / (args.prompts * 4),
        "peak_gpu_memory_gb": torch.cuda.max_memory_allocated(engine.device) / 2**30 if cuda else None,
        "update_mfu": statistics.median(mfu) if mfu else None,
        "peak_tflops_assumed": peak,
        "setup_s": setup_s,
        "wall_s": time.perf_counter() - started,
        "steps": records,
    }
    engine.shutdown()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="the tiny config on any device (CPU test of the logic)")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (x G=4 completions)")
    parser.add_argument("--max-new-tokens", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the GPU's dense bf16 peak (default: by name)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if not args.tiny and not torch.cuda.is_available():
        log.info("bench_gpu: no CUDA device here; skipped (use --tiny to run the logic on CPU)")
        return 0
    result = run(args)
    out = args.out or RESULTS / ("gpu_tiny.json" if args.tiny else "gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    mfu = f"{100 * result['update_mfu']:.1f}%" if result["update_mfu"] is not None else "n/a (no GPU peak)"
    log.info("%s: %.1f s/step, %.0f generated tokens/s per GPU, peak GPU memory %s GB, update MFU %s; wall %.0f s",
             result["size"], result["s_per_step"], result["generated_tokens_per_s_per_gpu"],
             f"{result['peak_gpu_memory_gb']:.1f}" if result["peak_gpu_memory_gb"] is not None else "n/a", mfu,
             result["wall_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
