"""An InternVL checkpoint in the remote-code layout is refused before anything starts, in one line that
gives the convert command (#17).

The paper's InternVL runs started from OpenGVLab/InternVL3-2B-Instruct, which the hub has only in the
remote-code layout (`InternVLChatModel`, `auto_map`); the native loader cannot read it. Before this check
`model=internvl3_2b_instruct` failed where the model loads, offline with "not in the local HF cache" and
no word of converting, online with transformers' traceback; a local remote-code download without weights
was refused for its missing weights, again without the convert hint. A hub id is refused where the model
is about to load (build_adapter), a local folder already at the entry's validation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub import constants

from grit_exp.config.model import check_model_path
from grit_exp.errors import ConfigError
from grit_exp.models import build_adapter
from tests.models.model_helpers import model_cfg

CONVERT = "python -m grit_exp.models.convert_internvl"
# config.json of OpenGVLab/InternVL3-2B-Instruct, abridged (the fields the layout is recognised by)
REMOTE_CONFIG = {
    "architectures": ["InternVLChatModel"],
    "auto_map": {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
                 "AutoModel": "modeling_internvl_chat.InternVLChatModel",
                 "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel"},
    "model_type": "internvl_chat",
    "llm_config": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 1536},
    "vision_config": {"architectures": ["InternVisionModel"], "model_type": "intern_vit_6b", "hidden_size": 1024},
    "template": "internvl2_5", "downsample_ratio": 0.5, "force_image_size": 448,
}


def internvl_cfg(path: str | Path):
    return model_cfg("tiny_internvl", path, tiny=False)


def remote_code_download(folder: Path, config: dict | None = None) -> Path:
    """A folder laid out like `huggingface-cli download OpenGVLab/InternVL3-2B-Instruct` (no weights needed)."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config or REMOTE_CONFIG))
    for name in ("configuration_internvl_chat.py", "modeling_internvl_chat.py", "conversation.py"):
        (folder / name).write_text("# remote code\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"auto_map": {}}))
    return folder


def run_entry(module: str, *args: str, cwd: Path) -> tuple[int, list[str]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cwd / "hf")}
    env.pop("HYDRA_FULL_ERROR", None)
    done = subprocess.run([sys.executable, "-m", f"grit_exp.{module}", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    lines = [line for line in done.stderr.splitlines() if line.strip() and "real_accelerator" not in line]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.returncode, lines


@pytest.mark.parametrize("module", ["train", "evaluate"])
def test_the_instruct_model_group_is_refused_with_the_convert_command(module, tmp_path) -> None:
    """Refused where the model is about to load (the recipes that name it compose and validate: the user adds
    model.path=<converted dir>), before any weights, warm start or evaluation."""
    code, lines = run_entry(module, "model=internvl3_2b_instruct", "dataset=synthetic",
                            f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"grit_exp.{module}: error: model.path=OpenGVLab/InternVL3-2B-Instruct names an "
                               "InternVL repository that the Hugging Face Hub has only in the remote-code layout")
    assert ("huggingface-cli download OpenGVLab/InternVL3-2B-Instruct --local-dir <download>, then "
            f"{CONVERT} <download> <dir>, and give model.path=<dir>") in lines[0]
    assert not list((tmp_path / "run").glob("**/*.safetensors")) and not (tmp_path / "run" / "metrics.json").exists()


def test_a_remote_code_download_is_refused_at_the_config_check(tmp_path) -> None:
    download = remote_code_download(tmp_path / "InternVL3-2B-Instruct")
    code, lines = run_entry("train", "model=internvl3_2b", f"model.path={download}",
                            f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert lines[0] == (f"grit_exp.train: error: model.path={download} holds a 'internvl_chat' model in InternVL's "
                        "remote-code layout (model_type 'internvl_chat'), which the native loader cannot read: convert "
                        f"it once, {CONVERT} {download} <dir>, and give model.path=<dir>")


@pytest.mark.parametrize("config", [
    {"architectures": ["InternVLChatModel"], "model_type": "internvl"},  # a hand-edited model_type
    {"model_type": "internvl", "auto_map": {"AutoModel": "modeling_internvl_chat.InternVLChatModel"}},
])
def test_every_mark_of_the_remote_code_layout_is_recognised(config, tmp_path) -> None:
    download = remote_code_download(tmp_path / "ckpt", config)
    with pytest.raises(ConfigError, match=rf"remote-code layout .*{CONVERT} {download} <dir>"):
        check_model_path(internvl_cfg(download))
    with pytest.raises(ConfigError, match=rf"remote-code layout .*{CONVERT} {download} <dir>"):
        build_adapter(internvl_cfg(download))  # the model-load check (hub=True) says the same


def test_a_remote_code_hub_id_in_the_hf_cache_is_refused_by_its_config(tmp_path, monkeypatch) -> None:
    """A repository the check does not know by name (a user's own upload), found in the HF cache offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    repo = tmp_path / "hf" / "models--someone--my-internvl"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("b" * 40)
    remote_code_download(repo / "snapshots" / ("b" * 40))
    with pytest.raises(ConfigError, match=r"model\.path=someone/my-internvl is an InternVL repository in the "
                                          r"remote-code layout .*huggingface-cli download someone/my-internvl"):
        build_adapter(internvl_cfg("someone/my-internvl"))  # where the model is about to load
    assert check_model_path(internvl_cfg("someone/my-internvl")) is None  # the entry's validation: no hub lookup


def test_native_internvl_ids_and_qwen_are_left_alone(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    assert check_model_path(internvl_cfg("OpenGVLab/InternVL3-2B-hf")) is None  # the native copy: no refusal
    assert check_model_path(model_cfg("tiny_qwen2_5_vl", "Qwen/Qwen2.5-VL-3B-Instruct", tiny=False)) is None
