"""A checkpoint's `model/` does not depend on the engine that wrote it. Real processes (torchrun, gloo).

- The tensor names of `step_N/model/` are the same for 1 process, DDP, ZeRO-2 and ZeRO-3 (the
  family's original layout, one name per tensor). Before the fix ZeRO-3 wrote
  `model.model.embed_tokens.weight` where one process writes `model.embed_tokens.weight`, and ZeRO-2
  added the tied `lm_head.weight`.
- LoRA under ZeRO-3 saves real weights: `adapter/` and `step_N/model/` (merged) are built from the
  consolidated state: the adapters equal DeepSpeed's offline consolidation of the run's shards, the
  merged model equals PEFT's merge of them. Before the fix the writer deep-copied and merged the rank's
  own, ZeRO-3-sharded (empty) parameters.
- LoRA under ZeRO-3 starts from the 1-process adapters, bit for bit (the base built inside zero.Init,
  the adapters seeded in build_policy outside it, then partitioned by DeepSpeed from rank 0's values),
  and trains as 1 process does. Before SFT's loss became the global token mean, `sft_step` averaged each
  process's own token mean, so 2 processes weighted tokens differently from 1 (DDP and ZeRO-3 alike),
  and AdamW's first step turned that small gradient difference into up to 2 x lr (measured: ZeRO-3 vs
  DDP 1.2e-7, either vs 1 process 2.0e-3).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tests.training.test_engines_equivalent import ROOT, train

SHORT = ["dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2", "trainer.max_steps=1",
         "trainer.prompts_per_step=2", "trainer.micro_batch_size=2", "algorithm.num_generations=2",
         "trainer.warm_start_sft_steps=0", "trainer.eval_on_start=false", "trainer.eval_every=100",
         "trainer.save_every=1", "rollout.max_new_tokens=8", "eval.sampled_k=0", "seed=5"]
LORA_SFT = ["algorithm=sft", "trainer.learning_rate=1e-3", "trainer.max_steps=2", "trainer.save_every=2",
            "model.lora.enabled=true", "model.lora.r=4", "model.lora.dropout=0.0"]


def tensor_names(model_dir: Path) -> list[str]:
    names: list[str] = []
    for file in sorted(model_dir.glob("*.safetensors")):
        with safe_open(str(file), "pt") as handle:
            names += handle.keys()
    return sorted(names)


def loaded(model_dir: Path) -> dict[str, torch.Tensor]:
    from transformers import Qwen2_5_VLForConditionalGeneration

    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    return {k: v.float() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_every_engine_writes_the_same_tensor_names(tmp_path, grit_cache, tiny_model_paths) -> None:
    names = {}
    for processes, cluster in ((1, "local"), (2, "ddp"), (2, "node8"), (2, "node8_zero3")):
        run = train(processes, cluster, tmp_path / cluster, grit_cache, *SHORT)
        model_dir = run / "checkpoints" / "step_1" / "model"
        names[cluster] = tensor_names(model_dir)
        loaded(model_dir)  # every tensor found where from_pretrained looks, none left over
    one = names["local"]
    assert "model.embed_tokens.weight" in one and any(n.startswith("visual.blocks.") for n in one), one[:5]
    assert "lm_head.weight" not in one  # tied to the input embedding: one name per tensor
    for cluster, found in names.items():
        assert found == one, (cluster, sorted(set(found) ^ set(one))[:6])


@pytest.mark.slow
def test_lora_under_zero3_saves_the_trained_weights(tmp_path, grit_cache, tiny_model_paths) -> None:
    """`adapter/` equals what DeepSpeed's own offline consolidation (zero_to_fp32) reads from the run's
    `state/` shards; `model/` equals the start model with those adapters merged by PEFT; names as one
    process writes them; the trained adapters equal DDP's on as many processes and the 1-process run's
    (SFT's loss is the global token mean, see the module docstring)."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from peft import PeftModel
    from transformers import Qwen2_5_VLForConditionalGeneration

    # every tensor of the tiny model is under DeepSpeed's persistence threshold (1e5 elements) and would stay
    # whole on each process; threshold 0 shards them all, as a real model's are
    config = json.loads((ROOT / "launchers" / "deepspeed" / "zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "zero3.json").write_text(json.dumps(config))
    one = train(1, "local", tmp_path / "one", grit_cache, *SHORT, *LORA_SFT) / "checkpoints" / "step_2"
    zero3 = train(2, "node8_zero3", tmp_path / "zero3", grit_cache, *SHORT, *LORA_SFT,
                  f"cluster.deepspeed_config={tmp_path / 'zero3.json'}") / "checkpoints" / "step_2"
    ddp = train(2, "ddp", tmp_path / "ddp", grit_cache, *SHORT, *LORA_SFT) / "checkpoints" / "step_2"
    assert tensor_names(one / "model") == tensor_names(zero3 / "model")
    assert tensor_names(one / "adapter") == tensor_names(zero3 / "adapter")
    on_ddp = load_file(ddp / "adapter" / "adapter_model.safetensors")
    on_one = load_file(one / "adapter" / "adapter_model.safetensors")

    trained = get_fp32_state_dict_from_zero_checkpoint(str(zero3 / "state"), tag="pytorch_model")
    adapter = load_file(zero3 / "adapter" / "adapter_model.safetensors")
    assert adapter and all(t.numel() > 0 for t in adapter.values())
    for name, tensor in adapter.items():
        assert torch.equal(tensor.float(), trained[name.replace(".weight", ".default.weight")].float()), name
        assert (tensor.float() - on_ddp[name].float()).abs().max() <= 1e-5, name  # the same training as DDP's
        assert (tensor.float() - on_one[name].float()).abs().max() <= 1e-5, name  # ... and as 1 process's

    start = {k: v.float() for k, v in Qwen2_5_VLForConditionalGeneration.from_pretrained(
        tiny_model_paths["tiny_qwen2_5_vl"]).state_dict().items()}
    for step_dir in (one, zero3):
        merged = loaded(step_dir / "model")
        changed = [k for k in start if not torch.equal(start[k], merged[k])]
        assert changed and all(".self_attn." in k for k in changed), changed  # LoRA on q/k/v/o trained, nothing else
        base = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model_paths["tiny_qwen2_5_vl"])
        with_adapter = PeftModel.from_pretrained(base, step_dir / "adapter").merge_and_unload()
        again = {k: v.float() for k, v in with_adapter.state_dict().items()}
        assert max((again[k] - merged[k]).abs().max().item() for k in merged) <= 1e-6, step_dir


@pytest.mark.slow
def test_lora_under_zero3_starts_from_the_one_process_adapters(tmp_path, grit_cache, tiny_model_paths) -> None:
    """One step at learning rate 0 saves the adapters as build_policy made them: 2-process ZeRO-3 (every
    tensor sharded) writes the 1-process run's adapters and merged model bit for bit."""
    config = json.loads((ROOT / "launchers" / "deepspeed" / "zero3.json").read_text())
    config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "zero3.json").write_text(json.dumps(config))
    start = [*SHORT, *LORA_SFT, "trainer.learning_rate=0", "trainer.max_steps=1", "trainer.save_every=1"]
    one = train(1, "local", tmp_path / "one", grit_cache, *start) / "checkpoints" / "step_1"
    zero3 = train(2, "node8_zero3", tmp_path / "zero3", grit_cache, *start,
                  f"cluster.deepspeed_config={tmp_path / 'zero3.json'}") / "checkpoints" / "step_1"
    a, b = (load_file(step / "adapter" / "adapter_model.safetensors") for step in (one, zero3))
    assert a.keys() == b.keys() and any("lora_A" in k and a[k].abs().sum() > 0 for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:4]
    ma, mb = loaded(one / "model"), loaded(zero3 / "model")
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
