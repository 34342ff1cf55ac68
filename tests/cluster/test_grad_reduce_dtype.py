"""`cluster.grad_reduce_dtype`: the dtype DeepSpeed reduces and accumulates gradients in (issue #18).

- The engine's DeepSpeed config sets `communication_data_type` and `data_types.grad_accum_dtype` for fp32 and
  bf16, and neither for "auto" (DeepSpeed's default, the compute dtype: what the released GRIT code ran, whose
  accelerate ZeRO-2 config sets neither); DeepSpeed's own parser reads them back; a JSON that sets them as
  well is refused in one line; DDP refuses bf16; the choice is recorded (engine.json via `describe()`).
- Two real processes over gloo under ZeRO-2 (slow): DeepSpeed's engine and its ZeRO optimizer were built
  with the chosen dtypes, and training steps run with each value.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grit_exp.cluster.engine import deepspeed_config, resolve_grad_reduce_dtype
from grit_exp.config import validate_train
from grit_exp.errors import ConfigError
from tests.helpers.configs import compose_config

ROOT = Path(__file__).resolve().parents[2]


def filled(cfg, dtype: str, mixed_precision: str = "bf16") -> dict:
    return deepspeed_config(cfg.cluster.deepspeed_config, micro_batch_size=4, accumulation_steps=2, world_size=1,
                            max_grad_norm=1.0, mixed_precision=mixed_precision, grad_reduce_dtype=dtype)


@pytest.mark.parametrize("cluster", ["node8", "node8_zero3"])
def test_the_deepspeed_config_carries_the_choice(cluster):
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = compose_config("train", f"cluster={cluster}")
    assert cfg.cluster.grad_reduce_dtype == "auto"
    auto = filled(cfg, "auto")
    assert "communication_data_type" not in auto and "data_types" not in auto, "auto leaves both to DeepSpeed"
    for dtype, torch_dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        config = filled(cfg, dtype)
        assert config["communication_data_type"] == dtype and config["data_types"] == {"grad_accum_dtype": dtype}
        parsed = DeepSpeedConfig(config)
        assert parsed.communication_data_type == torch_dtype and parsed.grad_accum_dtype == dtype


def test_the_paper_preset_reduces_in_the_compute_dtype():
    cfg = compose_config("train", "experiment=grit_qwen2_5_vl_3b")
    assert cfg.cluster.grad_reduce_dtype == "auto" and cfg.trainer.mixed_precision == "bf16"
    assert resolve_grad_reduce_dtype("auto", "deepspeed", "bf16") == "bf16"  # DeepSpeed's default under bf16
    assert resolve_grad_reduce_dtype("auto", "deepspeed", "no") == "fp32"
    assert resolve_grad_reduce_dtype("fp32", "deepspeed", "bf16") == "fp32"
    assert resolve_grad_reduce_dtype("auto", "ddp", "bf16") == "fp32"  # DDP: fp32 gradients of fp32 weights


def test_conflicts_are_refused_in_one_line(tmp_path):
    own = tmp_path / "own.json"
    own.write_text(json.dumps({"zero_optimization": {"stage": 2}, "communication_data_type": "fp32"}))
    cfg = compose_config("train", "cluster=node8", f"cluster.deepspeed_config={own}")
    assert "communication_data_type" in filled(cfg, "auto")  # auto: the JSON's own choice stands
    with pytest.raises(ConfigError, match=r"own.json: sets 'communication_data_type', and so does "
                                          r"cluster.grad_reduce_dtype='bf16'"):
        filled(cfg, "bf16")
    with pytest.raises(ConfigError, match=r"^cluster.grad_reduce_dtype='bf16' applies to cluster.engine=deepspeed"):
        validate_train(compose_config("train", "cluster=ddp", "cluster.grad_reduce_dtype=bf16"))
    validate_train(compose_config("train", "cluster=ddp", "cluster.grad_reduce_dtype=fp32"))
    with pytest.raises(Exception, match="cluster.grad_reduce_dtype=fp16"):  # an enum: refused when composing
        compose_config("train", "cluster.grad_reduce_dtype=fp16")


def run_worker(tmp_path: Path, cache: Path, dtype: str) -> dict:
    out = tmp_path / f"{dtype}.json"
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "tests/cluster/grad_reduce_worker.py"),
                           str(out), dtype], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_zero2_processes_over_gloo_take_both_values(tmp_path, grit_cache):
    reports = {dtype: run_worker(tmp_path, grit_cache, dtype) for dtype in ("fp32", "bf16")}
    for dtype, torch_dtype in (("fp32", "torch.float32"), ("bf16", "torch.bfloat16")):
        r = reports[dtype]
        assert r["ds_config_communication_data_type"] == dtype and r["ds_config_data_types"] == {"grad_accum_dtype": dtype}
        assert r["engine_communication_data_type"] == r["zero_communication_data_type"] == torch_dtype, r
        assert r["engine_grad_accum_dtype"] == r["zero_gradient_accumulation_dtype"] == torch_dtype, r
        assert r["engine_describe"]["grad_reduce_dtype"] == dtype and r["engine_describe"]["zero_stage"] == 2
        assert r["finite"] and len(r["losses"]) == 4
    assert reports["bf16"]["losses"][:2] == reports["fp32"]["losses"][:2], "the first step's forward passes agree"
    assert reports["bf16"]["losses"][2:] != reports["fp32"]["losses"][2:], "bf16 reduction rounds the gradients"
