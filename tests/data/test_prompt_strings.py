"""conf/prompt/*.yaml give exactly the reference strings (grit.md section 2), alone and composed by Hydra."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from grit_exp.config import register_configs
from grit_exp.data.prompts import build_user_text, load_prompt_yaml

CONF = Path(__file__).resolve().parents[2] / "conf"

# Literals copied from /work/shared/reference/grit.md, section 2 (`\n` there is a newline).
GRIT_SUFFIX = (
    " First, think between <think> and </think> while output necessary coordinates needed to answer the question"
    " in JSON with key 'bbox_2d'. Then, based on the thinking contents and coordinates, rethink between <rethink>"
    " </rethink> and then answer the question after <answer>.\n"
)
INTERNVL_ICL_SUFFIX = GRIT_SUFFIX.replace("in JSON with key 'bbox_2d'", "between <box> and </box>")
QWEN_EXAMPLE = '\nExample: Question: How many chairs are there?\n<think> Let me check them out \n{\n  "bbox_2d": [142, 314, 299, 447],\n  "label": "chair",\n  "bbox_2d": [0, 439, 58, 531],\n  "label": "chair",\n  "bbox_2d": [222, 260, 299, 324],\n  "label": "chair",\n  "bbox_2d": [285, 325, 336, 430],\n  "label": "chair",\n  "bbox_2d": [316, 329, 336, 387],\n  "label": "chair"\n}\n \n</think>\n<rethink>\nBased on the bounding box coordinates, there are 5 chairs in the picture. \n</rethink>\n<answer>\n5\n</answer>'  # noqa: E501
INTERNVL_THINK = "<think> Let me check them out <ref>chair</ref> <box>[[142, 314, 299, 447], [0, 439, 58, 531], [222, 260, 299, 324], [285, 325, 336, 430], [316, 329, 336, 387]]</box> </think>"  # noqa: E501
INTERNVL_EXAMPLE = (
    QWEN_EXAMPLE[: QWEN_EXAMPLE.index("<think>")]
    + INTERNVL_THINK
    + QWEN_EXAMPLE[QWEN_EXAMPLE.index("\n<rethink>") :]
)
SFT_SUFFIX = (
    "\nFirst, output a lists of all necessary coordinates (bbox_2d) needed to answer the question, then answer the"
    " question after <answer>.\n"
)
Q = "What is across from the truck?"
PREFIX = "\nQuestion: "

EXPECTED = {  # prompt name -> (Qwen user text, InternVL user text)
    "grit": (PREFIX + Q + GRIT_SUFFIX, PREFIX + Q + GRIT_SUFFIX),
    "direct": (PREFIX + Q, PREFIX + Q),
    "cot": (PREFIX + Q + GRIT_SUFFIX, PREFIX + Q + GRIT_SUFFIX),
    "icl1": (PREFIX + Q + GRIT_SUFFIX + QWEN_EXAMPLE, PREFIX + Q + INTERNVL_ICL_SUFFIX + INTERNVL_EXAMPLE),
    "sft": (PREFIX + Q + SFT_SUFFIX, PREFIX + Q + SFT_SUFFIX),
}


def test_the_internvl_example_literal_is_what_the_reference_describes() -> None:
    assert INTERNVL_EXAMPLE.startswith(
        "\nExample: Question: How many chairs are there?\n<think> Let me check them out <ref>"
    )
    assert INTERNVL_EXAMPLE.endswith(
        "</box> </think>\n<rethink>\nBased on the bounding box coordinates, there are 5 "
        "chairs in the picture. \n</rethink>\n<answer>\n5\n</answer>"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prompt_yaml_gives_the_reference_strings(name: str) -> None:
    cfg = load_prompt_yaml(CONF / "prompt" / f"{name}.yaml")
    assert cfg.name == name
    qwen, internvl = EXPECTED[name]
    assert build_user_text(Q, cfg, "qwen2_5_vl") == qwen
    assert build_user_text(Q, cfg, "internvl") == internvl


def test_prompts_compose_with_hydra_onto_the_schema() -> None:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for name, (qwen, internvl) in EXPECTED.items():
            cfg = compose(overrides=[f"+prompt={name}"])
            assert build_user_text(Q, cfg.prompt, "qwen2_5_vl") == qwen
            assert build_user_text(Q, cfg.prompt, "internvl") == internvl


def test_dataset_yamls_compose_and_resolve() -> None:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        grit20 = compose(
            overrides=["+dataset=grit20", "+paths.data_root=/data/GRIT_data", "+paths.cache_dir=/c"]
        )
        synthetic = compose(overrides=["+dataset=synthetic", "+paths.cache_dir=/cache"])
        grit_eval = compose(overrides=["+dataset=grit_eval", "+paths.data_root=/d"])
    OmegaConf.resolve(grit20)
    assert [(f.path, f.image_root) for f in grit20.dataset.train] == [
        ("/data/GRIT_data/tallyqa_train_10.jsonl", "/data/GRIT_data/tallyqa"),
        ("/data/GRIT_data/vsr_cot_train_10.jsonl", "/data/GRIT_data/vsr"),
    ]
    assert [f.name for f in grit20.dataset.eval] == [
        "vsr_val",
        "tallyqa_val",
        "gqa_val",
        "mathvista_mini_val",
        "mme_val",
        "ovd_position_val",
    ]
    assert all(f.path == f"/data/GRIT_data/{f.name}.jsonl" for f in grit20.dataset.eval)
    assert synthetic.dataset.synthetic.enabled and synthetic.dataset.synthetic.out_dir == "/cache/synthetic"
    assert list(grit_eval.dataset.train) == [] and len(grit_eval.dataset.eval) == 6


def test_unknown_families_are_rejected() -> None:
    cfg = load_prompt_yaml(CONF / "prompt" / "grit.yaml")
    with pytest.raises(ValueError, match="model family 'llava' is not valid"):
        build_user_text(Q, cfg, "llava")
    plain = {
        "question_prefix": PREFIX,
        "suffix": "",
        "example": "",
        "family_overrides": {"qwen": {"suffix": "x"}},
    }
    with pytest.raises(ValueError, match=r"prompt.family_overrides has unknown families \['qwen'\]"):
        build_user_text(Q, plain, "internvl")
