"""Helpers shared by the model tests: a tiny model's config node and rows with real PNG images."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf
from PIL import Image

from grit_exp.config import ModelConfig
from grit_exp.data.schema import GritRow

TINY = {
    "tiny_qwen2_5_vl": dict(family="qwen2_5_vl", min_pixels=3136, max_pixels=12544),
    "tiny_internvl": dict(family="internvl", tile_size=112, max_tiles=1, use_thumbnail=False),
}


def model_cfg(builder: str, path: Path | str, tiny: bool = True, **extra) -> ModelConfig:
    """A model config node for a tiny family at `path` (tiny=False: loaded as a plain checkpoint)."""
    values = dict(name=builder, path=str(path), tiny_builder=builder if tiny else None, **TINY[builder])
    return OmegaConf.merge(OmegaConf.structured(ModelConfig), {**values, **extra})


def make_rows(folder: Path, sizes=((112, 112), (150, 100))) -> list[GritRow]:
    rows = []
    for i, (w, h) in enumerate(sizes):
        path = folder / f"img{i}.png"
        im = Image.new("RGB", (w, h), (240, 240, 240))
        im.paste((200, 20, 20), (10, 10, 40, 40))
        im.save(path)
        rows.append(GritRow(question="How many red squares are there?", answer="1", image=str(path),
                            width=w, height=h, bboxs=[[10, 10, 40, 40]], dataset="synth_count"))
    return rows
