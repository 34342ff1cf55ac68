"""benchmarks/gpu_figures.py: the update's model FLOPs (MFU) count a group's prompt and image once per
micro-batch where the shared-prompt pass runs them once, include the vision tower, and EasyR1's token
count takes every completion's prompt. Checked on Qwen2.5-VL-3B's real config (meta device)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gpu_figures import (  # noqa: E402
    CompletionSize,
    easyr1_tokens,
    parameter_counts,
    prompt_forward_flops,
    text_forward_flops,
    update_flops,
    vision_forward_flops,
)

PROMPT, PATCHES, COMPLETION = 300, 1024, 1000  # a 448 px image: 32 x 32 patches -> 256 image tokens


@pytest.fixture(scope="module")
def model_3b():
    from transformers import Qwen2_5_VLForConditionalGeneration

    from grit_exp.models.real_width import qwen2_5_vl_3b_config

    with torch.device("meta"):
        return Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_3b_config())


def group(index: int, completions: list[int], patches: int = PATCHES) -> list[CompletionSize]:
    return [CompletionSize(index, PROMPT, patches, c) for c in completions]


def test_parameter_counts_are_qwen2_5_vl_3bs(model_3b) -> None:
    counts = parameter_counts(model_3b)
    assert counts["lm_head"] == 151936 * 2048  # tied: the embedding's weights, counted as the head
    assert sum(counts.values()) == 3_754_622_976  # the whole model, the tied head once
    assert 0.62e9 < counts["vision"] + counts["merger"] < 0.68e9  # the 32-block ViT (~0.67 B)
    assert 2.7e9 < counts["text_layers"] < 2.8e9


def test_hand_computed_forward_of_one_completion(model_3b) -> None:
    counts = parameter_counts(model_3b)
    layers, width = 36, 2048
    one_pass = text_forward_flops(model_3b.config, counts, PROMPT, COMPLETION, prompt_cached=False)
    length = PROMPT + COMPLETION
    assert one_pass == 2 * counts["text_layers"] * length + 2 * layers * width * length**2 + 2 * counts["lm_head"] * COMPLETION
    # prompt pass + cached completion pass == the one pass over prompt + completion
    cached = text_forward_flops(model_3b.config, counts, PROMPT, COMPLETION, prompt_cached=True)
    assert cached + prompt_forward_flops(model_3b.config, counts, PROMPT) == pytest.approx(one_pass)


def test_vision_tower_flops(model_3b) -> None:
    counts = parameter_counts(model_3b)
    config = model_3b.config
    got = vision_forward_flops(config, counts, PATCHES)
    # 4 full-attention blocks over all 1024 patches, 28 window blocks over 8 x 8 = 64 patches
    attention = 4 * 1280 * PATCHES * (4 * PATCHES + 28 * 64)
    assert got == 2 * counts["vision"] * PATCHES + 2 * counts["merger"] * PATCHES / 4 + attention
    assert vision_forward_flops(config, counts, 0) == 0.0
    # ~1.4 TFLOPs per 448 px image: a tenth of the text model's forward over 1300 tokens
    assert 1.2e12 < got < 1.6e12


def test_the_prompt_counts_once_per_group_and_micro_batch(model_3b) -> None:
    config, counts = model_3b.config, parameter_counts(model_3b)
    sequences = group(0, [COMPLETION] * 4)
    shared = update_flops(model_3b, sequences, micro_batch_size=4)
    unshared = update_flops(model_3b, sequences, micro_batch_size=4, shared_prompt=False)
    prompt = prompt_forward_flops(config, counts, PROMPT)
    vision = vision_forward_flops(config, counts, PATCHES)
    # 4 completions of one group: the shared pass runs the prompt and the image once instead of 4 times
    assert unshared - shared == pytest.approx(4 * 3 * (prompt + vision))
    # a group split over two micro-batches: its prompt runs in each
    split = update_flops(model_3b, sequences, micro_batch_size=2)
    assert split - shared == pytest.approx(4 * (prompt + vision))
    # two groups in one micro-batch: each prompt once
    two = update_flops(model_3b, group(0, [COMPLETION] * 2) + group(1, [COMPLETION] * 2), micro_batch_size=4)
    assert two == pytest.approx(split)
    # the vision tower is in: without an image, 4 forwards of it fewer
    assert shared - update_flops(model_3b, group(0, [COMPLETION] * 4, patches=0), 4) == pytest.approx(4 * vision)
    # no reference model (beta 0): 3 forwards instead of 4
    assert update_flops(model_3b, sequences, 4, reference=False) == pytest.approx(shared * 3 / 4)


def test_easyr1_counts_each_completions_prompt() -> None:
    sequences = group(0, [10, 20, 30, 40]) + group(1, [5] * 4)
    assert easyr1_tokens(sequences) == 8 * PROMPT + 100 + 20
