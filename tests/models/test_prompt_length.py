"""`model.max_prompt_length` is enforced where prompts are built: a longer prompt is refused with a
DataError naming the row (file:line) and the limit, never passed on to a model that then fails or,
truncated, sees an input nobody wrote. Before the fix nothing read `model.max_prompt_length`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from grit_exp.errors import DataError
from grit_exp.models import build_adapter
from tests.models.model_helpers import make_rows, model_cfg


@pytest.mark.parametrize("builder", ["tiny_qwen2_5_vl", "tiny_internvl"])
def test_a_prompt_over_the_limit_is_refused_naming_the_row_and_the_limit(builder, tiny_model_paths, tmp_path) -> None:
    rows = [replace(r, source=f"data/train.jsonl:{i + 7}") for i, r in enumerate(make_rows(tmp_path))]
    texts = ["How many red squares are there?", "How many red squares are there? " + "Count them all. " * 40]
    adapter = build_adapter(model_cfg(builder, tiny_model_paths[builder]))
    lengths = adapter.build_prompt_batch(rows[:1], texts[:1]).inputs["attention_mask"].sum(dim=1).tolist()
    short = lengths[0]
    fitting = build_adapter(model_cfg(builder, tiny_model_paths[builder], max_prompt_length=short))
    assert len(fitting.build_prompt_batch(rows[:1], texts[:1])) == 1  # exactly at the limit: accepted
    with pytest.raises(DataError, match=rf"^data/train\.jsonl:8: the prompt is \d+ tokens \(\d+ of them image tokens\), "
                                        rf"longer than model\.max_prompt_length={short}; "):
        fitting.build_prompt_batch(rows, texts)


def test_every_shipped_prompt_fits_the_tiny_models(tiny_model_paths, tmp_path) -> None:
    from omegaconf import OmegaConf

    from grit_exp.data.prompts import load_prompt_yaml
    from grit_exp.hydra_app import CONF_DIR

    rows = make_rows(tmp_path, sizes=((112, 112),))
    for builder in ("tiny_qwen2_5_vl", "tiny_internvl"):
        limit = OmegaConf.load(CONF_DIR / "model" / f"{builder}.yaml").max_prompt_length
        adapter = build_adapter(model_cfg(builder, tiny_model_paths[builder], max_prompt_length=limit))
        for path in sorted((CONF_DIR / "prompt").glob("*.yaml")):
            prompt = load_prompt_yaml(path)
            text = prompt.question_prefix + rows[0].question + prompt.suffix + (prompt.example or "")
            adapter.build_prompt_batch(rows, [text])
