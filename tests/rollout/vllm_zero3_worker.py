"""Test worker (run under torchrun by test_vllm_zero3_push.py): a tiny Qwen2.5-VL under DeepSpeed ZeRO-3 over
gloo, every tensor sharded (persistence threshold 0), iterated with `gathered_weights` as the vLLM push
does. Rank 0 writes a JSON: whether the names and values equal `checkpoint_weights` of the whole model
(LoRA merged), and how many sharded parameters were gathered at once at each yielded tensor.

argv: OUT.json ZERO3.json lora(0|1)
"""

from __future__ import annotations

import json
import sys

import torch

from grit_exp.cluster.engine import TrainingEngine
from grit_exp.models import build_adapter
from grit_exp.rollout.vllm_weights import gathered_weights, is_zero3_sharded
from grit_exp.rollout.weight_sync import checkpoint_weights
from grit_exp.training.run import apply_lora
from tests.helpers.configs import compose_config


def main(out: str, zero3_json: str, lora: bool) -> None:
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    cfg = compose_config("train", "model=tiny_qwen2_5_vl", "cluster=node8_zero3", f"cluster.deepspeed_config={zero3_json}",
                         "model.lora.enabled=true", "model.lora.r=4", "model.lora.dropout=0.0")
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=1, micro_batch_size=1)
    adapter = build_adapter(cfg.model)
    with engine.whole_model_loading():  # whole on every rank (the reference below); prepare() shards it
        model = adapter.load_model("cpu", dtype="float32")
    generator = torch.Generator().manual_seed(0)
    if lora:
        model = apply_lora(model, cfg.model.lora)
    with torch.no_grad():  # the same random weights and adapters on every rank
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    whole = [(n, t.clone()) for n, t in checkpoint_weights(model)]
    trainable = [p for p in model.parameters() if p.requires_grad]
    policy, _ = engine.prepare(model, torch.optim.AdamW(trainable, lr=1e-3))
    report: dict = {"lora": lora}
    with engine.generation_model(policy, gather=False) as bare:
        params = list(bare.parameters())
        sharded = [p for p in params if p.ds_tensor.numel() < p.ds_numel]
        report["sharded_params"], report["params"] = len(sharded), len(params)
        report["sharded_at_start"] = is_zero3_sharded(bare) and all(p.ds_status == ZeroParamStatus.NOT_AVAILABLE
                                                                    for p in sharded)
        pushed, gathered_counts = [], []
        for name, tensor in gathered_weights(bare):
            gathered_counts.append(sum(p.ds_status == ZeroParamStatus.AVAILABLE for p in sharded))
            pushed.append((name, tensor.clone()))
        report["gathered_after"] = sum(p.ds_status == ZeroParamStatus.AVAILABLE for p in sharded)
    report["max_gathered_at_once"] = max(gathered_counts)
    with engine.generation_model(policy) as bare:  # what the GRPO step gave the vLLM rollout before: all gathered
        report["gathered_for_hf_generation"] = sum(p.ds_status == ZeroParamStatus.AVAILABLE for p in sharded)
    report["names_equal"] = [n for n, _ in pushed] == [n for n, _ in whole]
    report["max_abs_diff"] = max(float((a - b).abs().max()) for (_, a), (_, b) in zip(pushed, whole, strict=True))
    report["tensors"] = len(pushed)
    if engine.is_main:
        with open(out, "w") as f:
            json.dump(report, f)
    engine.barrier()
    engine.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] == "1")
