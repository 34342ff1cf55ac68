"""The GRIT recipes' per-step batch is the released trainer's (docs/paper_batch.md), and the derivation's sharding
step holds on accelerate's own BatchSamplerShard (the class the released run's DataLoader went through)."""

from __future__ import annotations

import torch
from accelerate.data_loader import BatchSamplerShard
from torch.utils.data import BatchSampler

from grit_exp.config import validate_train
from tests.helpers.configs import compose_config


def released_epoch(num_prompts: int = 20, per_device: int = 4, processes: int = 8, generations: int = 4):
    """Per process, the prompt of each micro-batch of one epoch: RepeatRandomSampler (each index G times in a
    row) -> DataLoader batches of `per_device` -> accelerate's shard (even_batches=True, drop_last=False)."""
    order = torch.randperm(num_prompts, generator=torch.Generator().manual_seed(0)).tolist()
    indices = [i for i in order for _ in range(generations)]
    batches = BatchSampler(indices, batch_size=per_device, drop_last=False)
    out = []
    for rank in range(processes):
        shard = BatchSamplerShard(batches, num_processes=processes, process_index=rank, even_batches=True)
        assert all(len(set(b)) == 1 for b in shard)  # one prompt x G per micro-batch: one GRPO group
        out.append([b[0] for b in shard])
    return order, out


def test_the_released_epoch_is_24_groups_with_the_first_4_prompts_twice():
    order, per_rank = released_epoch()
    assert [len(r) for r in per_rank] == [3] * 8  # len(train_dataloader) = 3 per process
    groups = [p for r in per_rank for p in r]
    assert len(groups) == 24 and set(groups) == set(range(20))
    assert sorted(p for p in set(groups) if groups.count(p) == 2) == sorted(order[:4])
    # transformers' loop: max(3 // 4, 1) = 1 logged step per epoch -> 200 steps; DeepSpeed's boundary every 4
    # micro-batches over the whole run: 200 x 3 / 4 = 150 updates of 4 x 8 = 32 groups
    assert 200 * max(3 // 4, 1) == 200 and (200 * 3) // 4 == 150 and (200 * 3) % 4 == 0


def test_the_recipes_run_150_updates_of_32_groups_on_8_processes():
    for name in ("grit_qwen2_5_vl_3b", "grit_internvl3_2b", "ablation_qwen2_5_vl_3b_data_scaling"):
        cfg = compose_config("train", f"experiment={name}")
        assert cfg.trainer.max_steps == 150 and cfg.trainer.prompts_per_step == 32, name
        assert cfg.trainer.prompts_per_step * cfg.algorithm.num_generations == 128
        per_process = cfg.trainer.prompts_per_step // 8 * cfg.algorithm.num_generations
        assert per_process // cfg.trainer.micro_batch_size == 4  # 4 accumulation micro-batches of 4 completions
        validate_train(cfg, world_size=8)


def test_internvl_runs_start_from_the_instruct_release():
    for name in ("grit_internvl3_2b", "sft_internvl3_2b", "ablation_internvl3_2b_counting"):
        cfg = compose_config("train", f"experiment={name}")
        assert cfg.model.path == "OpenGVLab/InternVL3-2B-Instruct" and cfg.model.name == "internvl3_2b", name
    # the command line still picks another model (the tiny one for tests, a converted directory for real runs)
    assert compose_config("train", "experiment=grit_internvl3_2b", "model=tiny_internvl").model.tiny_builder


def test_the_sft_recipes_validate_on_8_processes():
    for name in ("sft_qwen2_5_vl_3b", "sft_internvl3_2b"):
        cfg = compose_config("train", f"experiment={name}")
        assert cfg.algorithm.name == "sft" and cfg.prompt.name == "sft" and cfg.dataset.name == "grit20_sft"
        validate_train(cfg, world_size=8)
