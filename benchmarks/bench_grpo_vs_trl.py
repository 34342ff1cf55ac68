"""One GRPO step, grit-exp vs TRL's GRPOTrainer, on identical work, in interleaved subprocesses.

The work (`grpo_setup.py`): the cached warm start of the tiny Qwen2.5-VL, 8 prompts x G=4 per step
(the same rows in the same order on both sides), up to 128 new tokens stopping at `</answer>`,
temperature 0.9 / top-k 50, beta 0.01 with a reference model, the sequence-mean loss, 2 micro-batches
of 16, fp32, AdamW lr 1e-4 constant, clip 1.0, rewards = grit-exp's `grit_paper` terms with the
rules judge. Completion j of prompt i at step s is drawn from the same per-completion seed on both
sides (grit-exp's Gumbel-max sampler, handed to TRL's `generate` as a logits processor).

Each round runs one side in a fresh process (order A B B A ..., so drift in the machine's load hits
both alike): `--warmup` steps, then `--steps` timed steps. Reported per side: the median seconds per
step, completion tokens per second, peak RSS, the phase breakdown, and how many completions were
token-identical to the other side's at the same step. Results go to benchmarks/results/ (read by
`bench_report.py`).

Run: `python benchmarks/bench_grpo_vs_trl.py [--rounds 2 --warmup 2 --steps 6]`.
Left out: GPUs (`bench_gpu.py`), vLLM, several processes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import grpo_setup  # noqa: E402

log = logging.getLogger("bench")
RESULTS = Path(__file__).parent / "results"
SIDES = ("grit", "trl")
# --before-src DIR: a third side, grit-exp from another source tree (e.g. `git archive <commit> src conf`),
# run with the same worker: the before/after of a change, on the same work
BEFORE = "grit_before"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------- grit-exp
def run_grit(cfg: Any, steps: int) -> list[dict]:
    import torch

    from grit_exp.algorithm.grpo import grpo_step
    from grit_exp.algorithm.step_modules import StepModules
    from grit_exp.cluster.engine import TrainingEngine
    from grit_exp.judge import build_judge
    from grit_exp.rollout.hf import HFRollout
    from grit_exp.training.run import build_scheduler

    try:
        from grit_exp.training.optimizer import build_optimizer
    except ImportError:  # a --before-src tree older than the fused optimizer: torch's default AdamW, as it used
        def build_optimizer(params, lr, weight_decay):
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    adapter, rows, start = grpo_setup.prepare(cfg)
    torch.manual_seed(cfg.seed)
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=2, micro_batch_size=grpo_setup.MICRO_BATCH)
    policy = adapter.load_model(engine.device, path=str(start), dtype="float32")
    reference = engine.prepare_frozen(adapter.load_model("cpu", path=str(start)))
    optimizer = build_optimizer(policy.parameters(), cfg.trainer.learning_rate, 0.0)
    scheduler = build_scheduler(optimizer, cfg.trainer)
    policy, optimizer = engine.prepare(policy, optimizer)
    rollout = HFRollout(adapter, cfg.rollout)
    captured: list = []
    original_generate = rollout.generate

    def generate(*args, **kwargs):
        out = original_generate(*args, **kwargs)
        captured.append(out)
        return out

    rollout.generate = generate  # type: ignore[method-assign]
    modules = StepModules(adapter, policy, reference, rollout, build_judge(cfg.judge), optimizer, scheduler, cfg, engine)
    records = []
    for step in range(1, steps + 1):
        metrics = grpo_step(modules, grpo_setup.step_rows(rows, step), step, first_prompt_index=0)
        out = captured.pop()
        completions = [ids[m.bool()].tolist() for ids, m in zip(out.completion_ids, out.completion_mask, strict=True)]
        records.append({
            "step": step, "step_s": metrics["time/step_s"], "rollout_s": metrics["time/rollout_s"],
            "reward_s": metrics["time/reward_s"], "update_s": metrics["time/update_s"],
            "reference_s": metrics.get("time/reference_s"), "reward": metrics["train/reward"],
            "completions": completions,
        })
    engine.shutdown()
    return records


# ---------------------------------------------------------------------------------------- TRL
def run_trl(cfg: Any, steps: int) -> list[dict]:
    import torch
    from PIL import Image
    from transformers import LogitsProcessorList, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from grit_exp.data.prompts import build_user_text
    from grit_exp.judge import build_judge
    from grit_exp.rewards import RewardContext, compute_rewards
    from grit_exp.rollout.seeded_sampling import PerRowSeededSampler

    adapter, rows, start = grpo_setup.prepare(cfg)
    torch.manual_seed(cfg.seed)
    judge = build_judge(cfg.judge)
    n = grpo_setup.PROMPTS_PER_STEP * steps
    used = [grpo_setup.step_rows(rows, s)[i] for s in range(1, steps + 1) for i in range(grpo_setup.PROMPTS_PER_STEP)]
    dataset = []
    for index, row in enumerate(used[:n]):
        with Image.open(row.image) as im:
            image = im.convert("RGB")
        text = build_user_text(row.question, cfg.prompt, adapter.family)
        dataset.append({"prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}],
                        "image": image, "row_index": index})
    phase: dict[str, float] = {"generate_s": 0.0, "reward_s": 0.0}

    def grit_rewards(prompts, completions, completion_ids, row_index, **_):
        started = time.perf_counter()
        ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(c) for c in completion_ids], batch_first=True)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(c), dtype=torch.long) for c in completion_ids],
                                               batch_first=True)
        texts = adapter.decode_completions(ids, mask)  # the same text grit-exp scores
        batch_rows = [used[i] for i in row_index]
        ctx = RewardContext(prompts=[build_user_text(r.question, cfg.prompt, adapter.family) for r in batch_rows],
                            token_ids=[list(c) for c in completion_ids], judge=judge,
                            counting_datasets=list(cfg.reward.counting_datasets))
        total = compute_rewards(cfg.reward, texts, batch_rows, ctx).total
        phase["reward_s"] += time.perf_counter() - started
        return total

    model = adapter.load_model("cpu", path=str(start), dtype="float32")
    pad = adapter.pad_token_id

    class SeededGRPOTrainer(GRPOTrainer):
        """TRL's trainer with per-completion seeds in `generate` and the stop string's padding dropped."""

        generations = 0

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            self.generations += 1
            seeds = grpo_setup.step_seeds(cfg.seed, self.generations)
            original = model.generate

            def seeded_generate(*args, **kwargs):
                sampler = PerRowSeededSampler(seeds, float(cfg.rollout.temperature), int(cfg.rollout.top_k),
                                              float(cfg.rollout.top_p), model.device)
                return original(*args, logits_processor=LogitsProcessorList([sampler]), tokenizer=adapter.tokenizer,
                                **kwargs)

            model.generate = seeded_generate
            started = time.perf_counter()
            try:
                ids, logprobs = super()._generate_single_turn(prompt_ids, images, multimodal_fields, num_generations,
                                                              has_tool_images)
            finally:
                del model.generate
            phase["generate_s"] += time.perf_counter() - started
            # TRL masks through the first end id (pad included below): a row ended by the stop string then
            # keeps one pad token, which grit-exp does not train on; drop it so both train on the same tokens
            ids = [c[:-1] if c and c[-1] == pad else c for c in ids]
            self.last_completions = ids
            return ids, logprobs

    records: list[dict] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()
            phase.update(generate_s=0.0, reward_s=0.0)

        def on_step_end(self, args, state, control, **kwargs):
            step_s = time.perf_counter() - self.started
            records.append({"step": state.global_step, "step_s": step_s, "rollout_s": phase["generate_s"],
                            "reward_s": phase["reward_s"], "update_s": step_s - phase["generate_s"] - phase["reward_s"],
                            "completions": trainer.last_completions})

    with tempfile.TemporaryDirectory() as out_dir:
        args = GRPOConfig(
            output_dir=out_dir, max_steps=steps, per_device_train_batch_size=grpo_setup.MICRO_BATCH,
            gradient_accumulation_steps=2, num_generations=grpo_setup.NUM_GENERATIONS,
            max_completion_length=grpo_setup.MAX_NEW_TOKENS, temperature=float(cfg.rollout.temperature),
            top_k=int(cfg.rollout.top_k), top_p=float(cfg.rollout.top_p), beta=float(cfg.algorithm.beta),
            loss_type="grpo", epsilon=float(cfg.algorithm.epsilon_low), scale_rewards="group",
            learning_rate=float(cfg.trainer.learning_rate), lr_scheduler_type="constant", weight_decay=0.0,
            max_grad_norm=float(cfg.trainer.max_grad_norm), use_cpu=True, bf16=False, gradient_checkpointing=False,
            shuffle_dataset=False, report_to="none", save_strategy="no", logging_steps=1, seed=cfg.seed,
            disable_dropout=True, dataloader_num_workers=0,
            generation_kwargs={"suppress_tokens": adapter.suppressed_token_ids,
                               "stop_strings": list(cfg.rollout.stop_strings)},
        )
        from datasets import Dataset

        trainer = SeededGRPOTrainer(model=model, args=args, reward_funcs=[grit_rewards],
                                    train_dataset=Dataset.from_list(dataset), processing_class=adapter.processor,
                                    callbacks=[StepTimer()])
        trainer.eos_token_ids = [*adapter.eos_token_ids, pad]  # the mask ends at a stop string's padding too
        # grit-exp's log-probs leave the never-sampled special tokens out of the softmax (as generation does);
        # TRL's keep them, and with tied embeddings AdamW then moves those tokens' embeddings (prompt tokens
        # among them) a little every step. The same masking on TRL's LM heads keeps the two objectives equal.
        suppressed = torch.tensor(adapter.suppressed_token_ids)

        def mask_suppressed(module, inputs, output):
            return output.index_fill(-1, suppressed.to(output.device), float("-inf"))

        for net in (model, trainer.ref_model):
            net.lm_head.register_forward_hook(mask_suppressed)
        trainer.train()
    return records


# ---------------------------------------------------------------------------------------- driver
def worker(side: str, steps: int, out: Path) -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    cfg = grpo_setup.compose_cfg()
    started = time.perf_counter()
    records = (run_grit if side == "grit" else run_trl)(cfg, steps)
    out.write_text(json.dumps({"side": side, "records": records, "peak_rss_mb": peak_rss_mb(),
                               "wall_s": time.perf_counter() - started, "threads": torch.get_num_threads()}))


def abba(rounds: int, before: bool = False, sides: tuple[str, ...] = SIDES) -> list[str]:
    """Fresh-process order of the sides: A B, then B A, ... (`before`: grit-exp's other tree as a third side)."""
    sides = (*sides, BEFORE) if before else sides
    order: list[str] = []
    for r in range(rounds):
        order += sides if r % 2 == 0 else sides[::-1]
    return order


def summarize(runs: list[dict], warmup: int) -> dict[str, Any]:
    """Medians over the timed steps of every run of each side, and the work's identity."""
    result: dict[str, Any] = {}
    completions: dict[str, dict[int, list]] = {s: {} for s in (*SIDES, BEFORE)}
    for side in [s for s in (*SIDES, BEFORE) if any(run["side"] == s for run in runs)]:
        timed = [r for run in runs if run["side"] == side for r in run["records"] if r["step"] > warmup]
        tokens = [sum(len(c) for c in r["completions"]) for r in timed]
        result[side] = {
            "s_per_step": statistics.median(r["step_s"] for r in timed),
            "completion_tokens_per_s": statistics.median(t / r["step_s"] for t, r in zip(tokens, timed, strict=True)),
            "rollout_s": statistics.median(r["rollout_s"] for r in timed),
            "reward_s": statistics.median(r["reward_s"] for r in timed),
            "update_s": statistics.median(r["update_s"] for r in timed),
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs if run["side"] == side),
            "timed_steps": len(timed), "processes": sum(run["side"] == side for run in runs),
            "step_s_all": [round(r["step_s"], 4) for r in timed],
        }
        if all(r.get("reference_s") is not None for r in timed):
            result[side]["reference_s"] = statistics.median(r["reference_s"] for r in timed)
        for run in runs:
            if run["side"] == side:
                for r in run["records"]:
                    completions[side].setdefault(r["step"], r["completions"])
    same = total = same_steps = 0
    for step, ours in completions["grit"].items():
        theirs = completions["trl"].get(step)
        if theirs is None:
            continue
        pairs = list(zip(ours, theirs, strict=True))
        same += sum(a == b for a, b in pairs)
        total += len(pairs)
        same_steps += all(a == b for a, b in pairs)
    result["identical_completions"] = same / max(total, 1)
    result["identical_steps"] = f"{same_steps}/{len(completions['grit'])}"
    result["ratio"] = result["trl"]["s_per_step"] / result["grit"]["s_per_step"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="ABBA rounds: each side runs in this many processes")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per process")
    parser.add_argument("--worker", choices=(*SIDES, BEFORE))
    parser.add_argument("--before-src", type=Path, default=None,
                        help="a grit-exp tree (with src/ and conf/) to run as a third side, 'grit_before'")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    if args.worker:
        worker("grit" if args.worker == BEFORE else args.worker, args.warmup + args.steps, args.out)
        return 0
    grpo_setup.prepare(grpo_setup.compose_cfg())  # the warm start, once, before any timing
    runs = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for index, side in enumerate(abba(args.rounds, args.before_src is not None)):
            out = Path(tmp) / f"{index}_{side}.json"
            command = [sys.executable, __file__, "--worker", side, "--warmup", str(args.warmup),
                       "--steps", str(args.steps), "--out", str(out)]
            env = dict(os.environ)
            if side == BEFORE:
                env["PYTHONPATH"] = str(args.before_src.resolve() / "src")
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            if done.returncode != 0:
                log.error("%s worker failed:\n%s", side, done.stderr[-4000:])
                return 1
            runs.append(json.loads(out.read_text()))
            runs[-1]["side"] = side
            load.append(os.getloadavg()[0])
            log.info("%s run %d: median %.3f s/step", side, index,
                     statistics.median(r["step_s"] for r in runs[-1]["records"][args.warmup:]))
    result = summarize(runs, args.warmup)
    result["conditions"] = {"load_average": [round(x, 2) for x in load], "cpu_cores": os.cpu_count(),
                            "torch_threads": runs[0]["threads"], "order": abba(args.rounds, args.before_src is not None),
                            "warmup_steps": args.warmup, "timed_steps_per_process": args.steps}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "grpo_step_vs_trl.json").write_text(json.dumps(result, indent=2) + "\n")
    log.info("grit %.3f s/step, TRL %.3f s/step: %.2fx; identical completions %.1f%%",
             result["grit"]["s_per_step"], result["trl"]["s_per_step"], result["ratio"],
             100 * result["identical_completions"])
    if BEFORE in result:
        log.info("grit before (%s): %.3f s/step", args.before_src, result[BEFORE]["s_per_step"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
