"""The figures that `bench_gpu.py` and `launchers/gpu_check.py` report for GRPO steps of a Qwen2.5-VL.

- `update_flops`: model FLOPs of one GRPO update (policy forward + backward = 3 forwards, the reference
  model's forward = 1), counted as grit-exp's update computes them (`ModelAdapter.completion_logprobs`):
  where the shared-prompt pass runs (the default; not under gradient checkpointing) a prompt, its image
  through the vision tower included, runs once per micro-batch that holds completions of its group, and
  each completion runs over the prompt's cache; otherwise every completion runs prompt + completion.
  The LM head runs over completion positions only (`logits_to_keep`). Per token of a text layer: 2 x its
  weights; causal attention 2 x width per (query, key) pair (QK^T and AV, half of the square). Vision
  tower per image of n patches: 2 x (block + patch-embedding weights) x n, the merger's 2 x weights per
  merged token (n / 4), attention 4 x width x n x keys (keys = n in full-attention blocks, the 8 x 8
  window = 64 patches in window blocks, not causal). Norms, activations and rotary embeddings are left out
  (under 1%), as in the usual 6 N D accounting.
- `easyr1_tokens`: EasyR1's (verl's) throughput count: prompt + response tokens of every completion,
  image tokens included, so a group's prompt counts G times; divided by the step's seconds and the GPUs.
- `peak_tflops`: the GPU's dense bf16 peak by name.

Left out: timing (the callers time), FLOPs of generation (the rollout's decode is not in the MFU).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

DENSE_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


@dataclass(frozen=True)
class CompletionSize:
    """One completion of a rollout: its group (prompt index), prompt tokens (image tokens included), the
    vision patches of its prompt's image(s) (0 without), and its completion tokens."""

    group: int
    prompt: int
    patches: int
    completion: int


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Weights per part of a Qwen2.5-VL (works on the meta device): the text layers (embedding left
    out), the tied / untied LM head, the vision blocks + patch embedding, the merger."""
    text = model.model.language_model
    visual = model.model.visual
    embedding = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings().weight.numel()
    merger = sum(p.numel() for p in visual.merger.parameters())
    return {"text_layers": sum(p.numel() for p in text.parameters()) - embedding, "lm_head": head,
            "vision": sum(p.numel() for p in visual.parameters()) - merger, "merger": merger}


def vision_forward_flops(config: Any, counts: dict[str, int], patches: int) -> float:
    """Forward FLOPs of the vision tower over one prompt's `patches` (t x h x w of image_grid_thw)."""
    if patches == 0:
        return 0.0
    vision = config.vision_config
    window = (vision.window_size // vision.patch_size) ** 2  # 112 px / 14 px = 8 x 8 patches
    full = len(vision.fullatt_block_indexes)
    keys = full * patches + (vision.depth - full) * min(window, patches)
    merged = patches / vision.spatial_merge_size**2
    return 2 * counts["vision"] * patches + 2 * counts["merger"] * merged + 4 * vision.hidden_size * patches * keys


def text_forward_flops(config: Any, counts: dict[str, int], prompt: int, completion: int, prompt_cached: bool) -> float:
    """Forward FLOPs of the text model for one completion; `prompt_cached`: the prompt ran in the shared
    pass (not counted here), the completion attends to its cache."""
    text = config.text_config
    width = text.num_attention_heads * (text.hidden_size // text.num_attention_heads)
    layers = text.num_hidden_layers
    tokens = completion if prompt_cached else prompt + completion
    flops = 2 * counts["text_layers"] * tokens
    flops += 2 * layers * width * (2 * prompt * completion + completion * completion)  # completion queries
    if not prompt_cached:
        flops += 2 * layers * width * prompt * prompt
    return flops + 2 * counts["lm_head"] * completion


def prompt_forward_flops(config: Any, counts: dict[str, int], prompt: int) -> float:
    """Forward FLOPs of the shared pass over one prompt (causal attention, the LM head at its last position)."""
    text = config.text_config
    width = text.num_attention_heads * (text.hidden_size // text.num_attention_heads)
    return 2 * counts["text_layers"] * prompt + 2 * text.num_hidden_layers * width * prompt * prompt


def update_flops(model: torch.nn.Module, sequences: Sequence[CompletionSize], micro_batch_size: int,
                 shared_prompt: bool = True, reference: bool = True) -> float:
    """Model FLOPs of one GRPO update over a process's completions (rollout order: micro-batches are
    consecutive slices of `micro_batch_size`): 3 forwards for the policy's forward + backward, 1 for the
    reference model's forward (`reference`: beta > 0 with a reference model)."""
    config = model.config
    counts = parameter_counts(model)
    forward = 0.0
    for start in range(0, len(sequences), micro_batch_size):
        micro = sequences[start : start + micro_batch_size]
        if shared_prompt:  # each group's prompt and image once per micro-batch
            firsts = {s.group: s for s in micro}.values()
            forward += sum(prompt_forward_flops(config, counts, s.prompt) + vision_forward_flops(config, counts, s.patches)
                           for s in firsts)
        else:
            forward += sum(vision_forward_flops(config, counts, s.patches) for s in micro)
        forward += sum(text_forward_flops(config, counts, s.prompt, s.completion, shared_prompt) for s in micro)
    return (3 + int(reference)) * forward


def easyr1_tokens(sequences: Sequence[CompletionSize]) -> int:
    """Prompt + response tokens of every completion (image tokens included): EasyR1's throughput count."""
    return sum(s.prompt + s.completion for s in sequences)


def rollout_sequences(rollout: Any, image_token_id: int, merge: int = 2) -> list[CompletionSize]:
    """The `CompletionSize`s of a `grit_exp.rollout.types.Rollout` (its prompt batch holds one entry per completion)."""
    inputs = rollout.prompt.inputs
    prompts = inputs["attention_mask"].sum(1).tolist()
    image_tokens = (inputs["input_ids"] == image_token_id).sum(1).tolist()
    index = rollout.prompt.prompt_index
    groups = list(index) if index is not None else list(range(len(prompts)))
    completions = rollout.completion_mask.sum(1).tolist()
    return [CompletionSize(int(g), int(p), int(i) * merge * merge, int(c))
            for g, p, i, c in zip(groups, prompts, image_tokens, completions, strict=True)]


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    """The GPU's dense bf16 peak: `given`, else by its name (None on CPU or for an unknown GPU)."""
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in DENSE_BF16_TFLOPS.items() if key in name), None)
