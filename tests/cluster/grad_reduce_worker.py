"""Test worker (run under torchrun by test_grad_reduce_dtype.py): the training engine with cluster=node8 (DeepSpeed
ZeRO-2) and `cluster.grad_reduce_dtype` from argv, on a small model over gloo; two optimizer steps (SGD: the
update is the gradient itself, so its rounding shows) of two micro-batches each. Rank 0 writes what
DeepSpeed was configured with (read back from the DeepSpeed engine and its ZeRO optimizer) and the losses.

argv: OUT.json GRAD_REDUCE_DTYPE
"""

from __future__ import annotations

import json
import sys

import torch

from grit_exp.cluster.engine import TrainingEngine
from tests.helpers.configs import compose_config


def main(out: str, dtype: str) -> None:
    cfg = compose_config("train", "cluster=node8", f"cluster.grad_reduce_dtype={dtype}")
    engine = TrainingEngine(cfg.cluster, cfg.trainer, accumulation_steps=2, micro_batch_size=4)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    policy, optimizer = engine.prepare(model, torch.optim.SGD(model.parameters(), lr=1e-2))
    data = torch.Generator().manual_seed(1 + engine.rank)
    losses = []
    for _ in range(2):
        for _ in range(2):
            with engine.accumulate(policy):
                x = torch.randn(4, 16, generator=data)
                loss = (policy(x) - x.sum(1, keepdim=True)).pow(2).mean()
                engine.backward(loss / 2)
                optimizer.step()
                optimizer.zero_grad()
                losses.append(float(loss))
    report = {
        "engine_describe": engine.describe(),
        "ds_config_communication_data_type": engine.accelerator.state.deepspeed_plugin.deepspeed_config.get(
            "communication_data_type"),
        "ds_config_data_types": engine.accelerator.state.deepspeed_plugin.deepspeed_config.get("data_types"),
        "engine_communication_data_type": str(policy.communication_data_type),
        "engine_grad_accum_dtype": str(policy.get_data_types()[1]),
        "zero_communication_data_type": str(policy.optimizer.communication_data_type),
        "zero_gradient_accumulation_dtype": str(policy.optimizer.gradient_accumulation_dtype),
        "losses": losses,
        "finite": all(torch.isfinite(p).all().item() for p in policy.parameters()),
    }
    if engine.is_main:
        with open(out, "w") as f:
            json.dump(report, f)
    engine.barrier()
    engine.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
