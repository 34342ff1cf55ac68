"""The SLURM cluster config and the sweep configs compose (fast: no SLURM needed): cluster=slurm
selects the submitit launcher and feeds it from cluster.slurm (command line or environment), the
launcher places one task per GPU, and the design card's and the ablations' sweeps compose and validate."""

from __future__ import annotations

import itertools

import pytest
from omegaconf import OmegaConf

from grit_exp.config import validate_train
from tests.helpers.configs import compose_config


def compose_train(overrides: list[str], hydra: bool = False):
    return compose_config("train", *overrides, hydra=hydra)


@pytest.mark.parametrize("selects", [["cluster=slurm"], ["hydra/launcher=submitit_slurm", "cluster=slurm"]])
def test_cluster_slurm_selects_the_submitit_launcher(selects):
    cfg = compose_train([*selects, "cluster.slurm.partition=gpu", "cluster.slurm.timeout_min=30"], hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.grit_exp_sweep.slurm_launcher.TolerantSlurmLauncher"
    assert launcher.partition == "gpu" and launcher.timeout_min == 30 and launcher.max_num_timeout == 3
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.grit_exp_sweep.sweeper.SummarizingSweeper"
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "submitit_slurm"


def test_every_slurm_setting_comes_from_the_environment(monkeypatch):
    env = {"GRIT_SLURM_NODES": "4", "GRIT_SLURM_GPUS_PER_NODE": "8", "GRIT_SLURM_CPUS_PER_TASK": "12",
           "GRIT_SLURM_MEM_GB": "480", "GRIT_SLURM_PARTITION": "h100", "GRIT_SLURM_ACCOUNT": "vision",
           "GRIT_SLURM_QOS": "high", "GRIT_SLURM_TIMEOUT_MIN": "720", "GRIT_ENGINE": "deepspeed",
           "GRIT_DEEPSPEED_CONFIG": "launchers/deepspeed/zero2.json"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = compose_train(["cluster=slurm"], hydra=True)
    s = cfg.cluster.slurm
    assert (s.nodes, s.gpus_per_node, s.cpus_per_task, s.mem_gb, s.partition, s.account, s.qos, s.timeout_min) == (
        4, 8, 12, 480, "h100", "vision", "high", 720)
    assert cfg.cluster.engine == "deepspeed" and cfg.cluster.deepspeed_config.endswith("zero2.json")
    assert (cfg.hydra.launcher.nodes, cfg.hydra.launcher.gpus_per_node, cfg.hydra.launcher.account) == (4, 8, "vision")
    assert compose_train(["cluster=slurm", "cluster.slurm.nodes=2"]).cluster.slurm.nodes == 2, "the command line wins"


@pytest.mark.parametrize(("gpus", "tasks", "expected_tasks", "expected_gpus"), [(8, 0, 8, 8), (0, 0, 1, None), (0, 2, 2, None)])
def test_launcher_runs_one_task_per_gpu(gpus, tasks, expected_tasks, expected_gpus):
    from hydra_plugins.grit_exp_sweep.slurm_launcher import TolerantSlurmLauncher

    cfg = compose_train(["cluster=slurm", f"cluster.slurm.gpus_per_node={gpus}", f"cluster.slurm.tasks_per_node={tasks}"],
                        hydra=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    launcher = TolerantSlurmLauncher(**params)
    assert launcher.params["tasks_per_node"] == expected_tasks and launcher.params["gpus_per_node"] == expected_gpus


def test_the_design_card_sweep_composes_and_validates():
    """-m reward.weights.count=0,0.5,1 dataset.num_samples=20,500,7000 seed=1,2,3: 27 jobs; every value of
    every axis composes and validates (the axes are plain values, so the diagonal covers each once)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    card = ["reward.weights.count=0,0.5,1", "dataset.num_samples=20,500,7000", "seed=1,2,3"]
    assert len(BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(card), None)[0]) == 27
    points = zip(["0", "0.5", "1"], ["20", "500", "7000"], ["1", "2", "3"], strict=True)
    for count, samples, seed in points:
        cfg = compose_train([f"reward.weights.count={count}", f"dataset.num_samples={samples}", f"seed={seed}"])
        assert (cfg.reward.weights["count"], cfg.dataset.num_samples, cfg.seed) == (float(count), int(samples), int(seed))
        validate_train(cfg)


@pytest.mark.parametrize(("experiment", "params"), [
    ("ablation_internvl3_2b_counting", {"dataset": "grit20,grit20_vsr", "reward.weights.count": "1.0,0.0"}),
    ("ablation_qwen2_5_vl_3b_data_scaling", {"dataset.num_samples": "20,500,7000"}),
])
def test_ablation_experiments_are_one_command_sweeps(experiment, params):
    cfg = compose_train([f"experiment={experiment}", "cluster=slurm"], hydra=True)
    assert dict(cfg.hydra.sweeper.params) == params
    jobs = [dict(zip(params, values, strict=True)) for values in itertools.product(*(v.split(",") for v in params.values()))]
    for job in jobs:
        point = compose_train([f"experiment={experiment}", "cluster=slurm", *(f"{k}={v}" for k, v in job.items())])
        validate_train(point)
        assert point.cluster.name == "slurm" and point.model.name in ("internvl3_2b", "qwen2_5_vl_3b")
