"""One config, four engines, real processes (torchrun, gloo on CPU): 1 process, 2 processes with DDP,
with DeepSpeed ZeRO-2 (cluster=node8) and ZeRO-3 (cluster=node8_zero3), at the same global batch and
seed, give the same sampled prompts exactly and the same loss curve and final weights within
tolerance. A ZeRO-2 run killed with SIGKILL and resumed ends equal to the uninterrupted one, each
rank reading only its own shard and RNG file. LoRA trains under DDP and ZeRO-2 alike.

Tolerance: the engines sum the same float32 gradients in a different order (one process, DDP's
all-reduce buckets, ZeRO's reduce-scatter partitions), so values agree to float32 rounding, not
bitwise. Measured: losses within 1e-9, weights within 1e-6 after 4 AdamW steps at lr 1e-4. The test
allows 1e-6 on losses and 1e-5 on weights. Completions come from per-completion seeds, so they do not
depend on the process count; the config uses `token_mean` and `scale_rewards=batch`, the two
normalisations that are global over processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TRACE_DIR = Path(__file__).resolve().parent / "open_trace"
RUN = [
    "dataset.synthetic.num_train=32", "dataset.synthetic.num_val=4", "trainer.max_steps=4",
    "trainer.prompts_per_step=4", "trainer.micro_batch_size=4", "trainer.warm_start_sft_steps=60",
    "trainer.warm_start_batch_size=16", "trainer.warm_start_learning_rate=2e-3", "trainer.eval_on_start=false",
    "trainer.eval_every=100", "trainer.save_every=2", "trainer.keep_last=3", "rollout.max_new_tokens=40",
    "algorithm.loss_aggregation=token_mean", "algorithm.scale_rewards=batch", "algorithm.num_generations=4",
    "eval.sampled_k=0", "seed=3",
]
LOSS_TOL, WEIGHT_TOL = 1e-6, 1e-5


def command(processes: int, cluster: str, run_dir: Path, *extra: str) -> list[str]:
    entry = ["-m", "grit_exp.train", *RUN, f"cluster={cluster}", f"hydra.run.dir={run_dir}", *extra]
    if processes == 1:
        return [sys.executable, *entry]
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [torchrun, "--standalone", "--nproc_per_node", str(processes), *entry]


def environment(cache: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "GRIT_EXP_CACHE": str(cache), "OMP_NUM_THREADS": "1", **extra}


def train(processes: int, cluster: str, run_dir: Path, cache: Path, *extra: str, **env: str) -> Path:
    out = subprocess.run(command(processes, cluster, run_dir, *extra), cwd=ROOT, env=environment(cache, **env),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return run_dir


def losses(run: Path) -> list[tuple[int, float, float]]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["train/loss"], r["train/reward"]) for r in records if "train/loss" in r]


def final_weights(run: Path, step: int = 4) -> dict[str, torch.Tensor]:
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(run / "checkpoints" / f"step_{step}" / "model")
    return {k: v.float() for k, v in model.state_dict().items()}


def sampled_prompts(run: Path) -> list[list[tuple]]:
    """Each step's prompt keys (dataset, question, image file name, answer): runs may use different caches."""
    steps = [json.loads(line) for line in (run / "sampled_prompts.jsonl").read_text().splitlines()]
    return [[(k[0], k[1], Path(k[2]).name, k[3]) for k in step["keys"]] for step in steps]


def assert_same_training(a: Path, b: Path) -> None:
    assert sampled_prompts(a) == sampled_prompts(b)
    la, lb = losses(a), losses(b)
    assert [s for s, *_ in la] == [s for s, *_ in lb] == [1, 2, 3, 4]
    for (_, loss_a, reward_a), (_, loss_b, reward_b) in zip(la, lb, strict=True):
        assert abs(loss_a - loss_b) <= LOSS_TOL and reward_a == reward_b, (la, lb)
    wa, wb = final_weights(a), final_weights(b)
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst <= WEIGHT_TOL, worst


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, grit_cache, tiny_model_paths) -> Path:
    run = train(1, "local", tmp_path_factory.mktemp("engines") / "one", grit_cache)
    assert json.loads((run / "engine.json").read_text())["num_processes"] == 1
    assert any(r[1] != 0 for r in losses(run)), "the warm start gives groups with reward spread: a real signal"
    return run


@pytest.fixture(scope="module")
def zero2(tmp_path_factory, grit_cache, tiny_model_paths) -> Path:
    return train(2, "node8", tmp_path_factory.mktemp("engines") / "zero2", grit_cache)


@pytest.mark.slow
@pytest.mark.parametrize("cluster", ["ddp", "node8_zero3"])
def test_two_processes_train_like_one(one_process, cluster, tmp_path, grit_cache):
    # ZeRO-3 starts from an empty cache: its warm start and untrained model load whole, outside the engine
    cache = tmp_path / "cache" if cluster == "node8_zero3" else grit_cache
    run = train(2, cluster, tmp_path / cluster, cache)
    engine = json.loads((run / "engine.json").read_text())
    assert engine["num_processes"] == 2 and engine["engine"] == ("ddp" if cluster == "ddp" else "deepspeed")
    assert_same_training(one_process, run)


@pytest.mark.slow
def test_zero2_trains_like_one_process_and_shards_its_state(one_process, zero2):
    assert_same_training(one_process, zero2)
    state = zero2 / "checkpoints" / "step_4" / "state"
    shards = sorted(p.name for p in (state / "pytorch_model").glob("zero_pp_rank_*_optim_states.pt"))
    assert shards == ["zero_pp_rank_0_mp_rank_00_optim_states.pt", "zero_pp_rank_1_mp_rank_00_optim_states.pt"]
    assert sorted(p.name for p in state.glob("random_states_*.pkl")) == ["random_states_0.pkl", "random_states_1.pkl"]
    model = zero2 / "checkpoints" / "step_4" / "model"
    assert {"config.json", "generation_config.json", "model.safetensors", "processor_config.json",
            "tokenizer_config.json"} <= {p.name for p in model.iterdir()}


@pytest.mark.slow
def test_zero2_killed_and_resumed_ends_like_an_uninterrupted_run(zero2, tmp_path, grit_cache):
    run = tmp_path / "killed"
    proc = subprocess.Popen(command(2, "node8", run, "trainer.save_every=1"), cwd=ROOT, env=environment(grit_cache),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while not (run / "checkpoints" / "step_2" / "checkpoint.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its step-2 checkpoint"
        time.sleep(0.2)
    # torchrun starts each worker in a session of its own: kill the workers, not only the launcher
    import psutil

    workers = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    proc.wait()
    psutil.wait_procs(workers, timeout=30)
    assert not (run / "checkpoints" / "step_4").exists(), "killed mid-way"

    trace = tmp_path / "opened.txt"
    train(2, "node8", run, grit_cache, "trainer.save_every=1", PYTHONPATH=str(TRACE_DIR),
          GRIT_OPEN_TRACE=str(trace), GRIT_OPEN_TRACE_UNDER=str(run / "checkpoints"))
    assert_same_training(zero2, run)
    opened: dict[str, set[str]] = {"0": set(), "1": set()}
    for line in trace.read_text().splitlines():
        rank, path = line.split(" ", 1)
        opened[rank].add(Path(path).name)
    for rank, other in (("0", "1"), ("1", "0")):
        assert f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt" in opened[rank]
        assert f"random_states_{rank}.pkl" in opened[rank]
        assert f"zero_pp_rank_{other}_mp_rank_00_optim_states.pt" not in opened[rank], opened
        assert f"random_states_{other}.pkl" not in opened[rank], opened


@pytest.mark.slow
def test_lora_with_gradient_checkpointing_trains_alike_under_ddp_and_zero2(tmp_path, grit_cache, tiny_model_paths):
    lora = ["model.lora.enabled=true", "model.lora.r=4", "model.lora.dropout=0.0", "trainer.max_steps=2",
            "trainer.save_every=2", "model.gradient_checkpointing=true"]
    ddp = train(2, "ddp", tmp_path / "ddp", grit_cache, *lora)
    zero2 = train(2, "node8", tmp_path / "zero2", grit_cache, *lora)
    la, lb = losses(ddp), losses(zero2)
    assert len(la) == 2 and all(abs(a[1] - b[1]) <= LOSS_TOL for a, b in zip(la, lb, strict=True)), (la, lb)
    for run in (ddp, zero2):
        assert (run / "checkpoints" / "step_2" / "adapter" / "adapter_model.safetensors").exists()
    wa, wb = final_weights(ddp, 2), final_weights(zero2, 2)
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) <= WEIGHT_TOL


@pytest.mark.slow
def test_frozen_vision_and_gradient_checkpointing_under_zero3(tmp_path, grit_cache, tiny_model_paths):
    from transformers import Qwen2_5_VLForConditionalGeneration

    run = train(2, "node8_zero3", tmp_path / "frozen", grit_cache, "algorithm=sft", "trainer.learning_rate=1e-3",
                "model.freeze_vision=true", "model.gradient_checkpointing=true", "trainer.max_steps=2",
                "trainer.save_every=2")
    trained = final_weights(run, 2)
    start = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_paths["tiny_qwen2_5_vl"]).state_dict()
    vision = [k for k in trained if k.startswith("model.visual.") and ".merger." not in k]
    llm = [k for k in trained if "language_model" in k]
    assert vision and llm
    assert all(torch.equal(trained[k], start[k].float()) for k in vision), "frozen: the vision tower is unchanged"
    assert sum(not torch.equal(trained[k], start[k].float()) for k in llm) > len(llm) // 2, "the LLM trained"


@pytest.mark.slow
def test_rank_zero_decides_the_run_directory(tmp_path, grit_cache, tiny_model_paths):
    """Each process's Hydra resolves `${now:...}` itself (here to the microsecond, so they differ); the
    run uses rank 0's directory and the other's empty Hydra directory is removed."""
    runs = tmp_path / "runs"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    out = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "grit_exp.train", "dataset.synthetic.num_train=8",
         "dataset.synthetic.num_val=2", "trainer.max_steps=1", "trainer.prompts_per_step=2", "trainer.micro_batch_size=4",
         "trainer.warm_start_sft_steps=0", "trainer.eval_on_start=false", "rollout.max_new_tokens=4",
         "cluster=ddp", f"hydra.run.dir={runs}/" + "${now:%H-%M-%S-%f}"],
        cwd=ROOT, env=environment(grit_cache), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    made = sorted(p.name for p in runs.iterdir())
    assert len(made) == 1, made
    assert (runs / made[0] / "metrics.jsonl").exists() and (runs / made[0] / "checkpoints" / "step_1").exists()
