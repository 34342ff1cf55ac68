"""The weights of a ZeRO-3-sharded training model for the vLLM push, gathered one module at a time.

Under ZeRO-3 each process holds a shard of every parameter. `rollout.weight_sync.checkpoint_weights`
needs whole tensors, and gathering the whole model for the whole rollout (as HF generation must)
would hold a full copy of the policy on every GPU while vLLM generates. `gathered_weights(model)`
yields the same (Hugging Face name, tensor) pairs as `checkpoint_weights`, in the same order, lazily:
it gathers one unit (`deepspeed.zero.GatheredParameters`), yields its tensors, and gives the gathered
copies back to ZeRO when the consumer asks for the next unit. A unit is one module's own parameters
(a weight and its bias), or a whole PEFT LoRA layer (base weight, bias, adapters: the merged weight
needs all of them at once).

vLLM's `reload_weights` consumes the iterator as it loads (`model.load_weights`), keeping the tensors
of a fused vLLM layer (q/k/v, gate/up) until the layer is complete: the gathered tensors it holds stay
alive through its references (DeepSpeed's release replaces `param.data`, it does not free the storage
under a reference), so at most about one fused layer is held at once. Gathering is a collective: every
process pushes at the same step and iterates the same units in the same order.

Left out: ZeRO-3 parameter offload to CPU or NVMe (GatheredParameters fetches those too, untested here)
and LoRA layers other than PEFT's `LoraLayer`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def is_zero3_sharded(model: torch.nn.Module) -> bool:
    """True when `model`'s parameters are ZeRO-3 partitioned (DeepSpeed marks each with a `ds_id`)."""
    return any(hasattr(p, "ds_id") for p in model.parameters())


def _units(base: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module, bool]]:
    """(prefix, module, whole subtree?) in state_dict order: each LoRA layer with its subtree, every other
    module with its own parameters and buffers only."""
    from peft.tuners.lora import LoraLayer

    lora_prefixes: list[str] = []
    for name, module in base.named_modules():
        if any(name.startswith(p + ".") for p in lora_prefixes):
            continue  # inside a LoRA layer: gathered with it
        whole = isinstance(module, LoraLayer)
        if whole:
            lora_prefixes.append(name)
        yield name, module, whole


def _own_tensors(module: torch.nn.Module, prefix: str) -> list[tuple[str, torch.Tensor]]:
    """The module's own state_dict entries (parameters, persistent buffers), as state_dict names them."""
    head = f"{prefix}." if prefix else ""
    out = [(head + n, p) for n, p in module._parameters.items() if p is not None]
    out += [(head + n, b) for n, b in module._buffers.items()
            if b is not None and n not in module._non_persistent_buffers_set]
    return out


def _checkpoint_name(key: str) -> str | None:
    """The Hugging Face name of a (PEFT) state_dict key; None for keys the push leaves out (as
    `checkpoint_weights` does: the adapters, which are merged, and the copy a modules_to_save layer replaces)."""
    if ".lora_" in key or ".original_module." in key:
        return None
    return key.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")


def _lora_delta(module: torch.nn.Module) -> torch.Tensor | None:
    if module.merged or module.disable_adapters:
        return None
    active = [a for a in module.active_adapters if a in module.lora_A or a in module.lora_embedding_A]
    return sum(module.get_delta_weight(a) for a in active) if active else None


def gathered_weights(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """`checkpoint_weights(model)`'s (name, tensor) pairs for a ZeRO-3-sharded model, one unit gathered at a
    time (see the module docstring). Every process must iterate it to the end, together."""
    import deepspeed
    from peft import PeftModel

    peft = isinstance(model, PeftModel)
    base = model.get_base_model() if peft else model
    for prefix, module, whole in _units(base):
        params = list(module.parameters(recurse=whole))
        if not params and not module._buffers:
            continue
        with deepspeed.zero.GatheredParameters(params):
            if whole:
                items = list(module.state_dict(prefix=f"{prefix}.", keep_vars=True).items())
                delta = _lora_delta(module) if peft else None
            else:
                items, delta = _own_tensors(module, prefix), None
            for key, tensor in items:
                name = _checkpoint_name(key) if peft else key
                if name is None:
                    continue
                tensor = tensor.detach()
                if delta is not None and name == f"{prefix}.weight":
                    tensor = tensor + delta.to(tensor.dtype)
                yield name, tensor
