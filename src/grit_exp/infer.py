"""`python -m grit_exp.infer --image PATH --question TEXT`: one grounded answer, its boxes, and a picture.

Composes conf/infer.yaml (the `model`, `prompt` and `rollout` groups; default: the offline tiny
Qwen2.5-VL, so it runs anywhere), builds the prompt exactly as training and evaluation do, decodes
greedily, then prints the completion and every box it wrote, mapped from the model's frame to
original-image pixels (`parse_boxes` + `ImageGeometry.model_to_original`), and writes the image with
the boxes drawn (to `out=PATH`, default `<run dir>/boxes.png`) plus `inference.json` in the run dir.

    python -m grit_exp.infer --image photo.jpg --question "What's left of the cup, [a] or (b)?"
    python -m grit_exp.infer --image photo.jpg --question "..." model=qwen2_5_vl_3b model.path=yfan1997/GRIT-20-Qwen2.5-VL-3B

`--image` / `--question` are taken out of the command line before Hydra parses its overrides, so any
text works as typed (Hydra's override grammar would split it at commas, quotes, brackets and `=`, and
OmegaConf would read `${...}` as an interpolation); they are recorded in `inference.json`. The older
form `image=PATH question="..."` (Hydra overrides) still works for simple text. A randomly
initialised model (the tiny default) is announced with a warning: its answers are noise.

Left out: judging the answer (there is no ground truth here) and batches of images (use evaluate).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from grit_exp.config import (
    ConfigError,
    ModelConfig,
    PathsConfig,
    PromptConfig,
    RolloutConfig,
    validate_groups,
)
from grit_exp.errors import reported_user_errors
from grit_exp.grounding.boxes import parse_boxes
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.hydra_app import CONF_DIR

log = logging.getLogger("grit_exp.infer")

BOX_COLORS = ((230, 20, 20), (20, 120, 230), (20, 170, 60), (200, 120, 0), (150, 40, 200), (0, 160, 160))


@dataclass
class InferConfig:
    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = MISSING
    prompt: PromptConfig = MISSING
    rollout: RolloutConfig = MISSING
    image: str = MISSING  # the image file
    question: str = MISSING
    out: str | None = None  # the picture with boxes; null: <run dir>/boxes.png
    device: str = "auto"  # "auto" (cuda when available, else cpu) or a torch device string


ConfigStore.instance().store(name="infer_schema", node=InferConfig)


def boxes_in_original(completion: str, geometry: ImageGeometry) -> list[dict[str, Any]]:
    """Every box `parse_boxes` finds in `completion`, with its coordinates in the model's frame and in
    original-image pixels (exact mapping, not clipped), its section, label and degeneracy."""
    return [
        {
            "model_box": list(b.box),
            "original": geometry.model_to_original(b.box),
            "section": b.section,
            "label": b.label,
            "degenerate": b.degenerate,
        }
        for b in parse_boxes(completion)
    ]


def _coords(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:.1f}" for v in box) + "]"


def format_result(completion: str, geometry: ImageGeometry) -> str:
    """The text `infer` prints: the completion, then one line per box in original pixels."""
    boxes = boxes_in_original(completion, geometry)
    lines = ["=== grounded reasoning ===", completion.strip(), "",
             f"=== {len(boxes)} box(es) in original-image pixels ({geometry.orig_width} x {geometry.orig_height}) ==="]
    for i, b in enumerate(boxes, start=1):
        extra = f"  label={b['label']!r}" if b["label"] else ""
        flag = "  (degenerate: encloses nothing)" if b["degenerate"] else ""
        lines.append(f"{i}. {_coords(b['original'])}  section={b['section']}{extra}  "
                     f"model frame {_coords(b['model_box'])}{flag}")
    return "\n".join(lines) + "\n"


def draw_boxes(image_path: Path, boxes: list[dict[str, Any]], out: Path) -> Path:
    """The image with each non-degenerate box (original pixels, clipped) outlined and numbered."""
    from PIL import Image, ImageDraw

    with Image.open(image_path) as im:
        picture = im.convert("RGB")
    width, height = picture.size
    draw = ImageDraw.Draw(picture)
    line = max(2, min(width, height) // 150)
    for i, b in enumerate(boxes, start=1):
        x1, y1, x2, y2 = b["original"]
        x1, x2 = (min(max(v, 0.0), width - 1) for v in (x1, x2))
        y1, y2 = (min(max(v, 0.0), height - 1) for v in (y1, y2))
        if b["degenerate"] or x2 <= x1 or y2 <= y1:
            continue
        color = BOX_COLORS[(i - 1) % len(BOX_COLORS)]
        draw.rectangle([x1, y1, x2, y2], outline=color, width=line)
        draw.text((x1 + line + 1, y1 + line), f"{i} {b['label'] or ''}".strip(), fill=color)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    return out


@dataclass(frozen=True)
class Request:
    """What to ask: from `--image` / `--question` (verbatim), else from the config's `image` / `question`."""

    image: str | None = None
    question: str | None = None


COMMAND_LINE = Request()  # set by `split_command_line` in __main__, read by the task function


def split_command_line(argv: Sequence[str]) -> tuple[Request, list[str]]:
    """`--image PATH --question TEXT` (also `--question=TEXT`) out of `argv`; the rest are Hydra's arguments."""
    parser = argparse.ArgumentParser(prog="python -m grit_exp.infer", add_help=False, allow_abbrev=False)
    parser.add_argument("--image")
    parser.add_argument("--question")
    known, rest = parser.parse_known_args(list(argv))
    return Request(known.image, known.question), rest


def _request_of(cfg: Any, request: Request | None) -> tuple[str, str]:
    request = request or Request()

    def from_config(key: str) -> str | None:
        return None if OmegaConf.is_missing(cfg, key) else str(cfg[key])

    image = request.image if request.image is not None else from_config("image")
    question = request.question if request.question is not None else from_config("question")
    if image is None:
        raise ConfigError("no image: pass --image PATH (or the override image=PATH)")
    if question is None:
        raise ConfigError('no question: pass --question "TEXT" (any text, as typed)')
    return image, question


def check_inputs(cfg: Any, request: Request | None = None) -> Path:
    """The image path, checked before any model is built; errors name the option or key."""
    image_text, question = _request_of(cfg, request)
    image = Path(image_text).expanduser()
    if not image.is_file():
        raise ConfigError(f"image={image_text!r}: no such file")
    if not question.strip():
        raise ConfigError('the question is empty; pass --question "TEXT"')
    if cfg.out and Path(str(cfg.out)).expanduser().exists():  # e.g. out=photo.jpg, the input itself
        raise ConfigError(
            f"out={cfg.out!r}: a file is already there and grit-exp never overwrites a file it did not write; "
            "choose a new path (default: <run dir>/boxes.png)"
        )
    return image


def warn_if_random(adapter: Any, cfg: Any) -> bool:
    """Warn (and return True) when the model is a freshly built tiny one: random weights, answers are noise."""
    from grit_exp.models.tiny import COMPLETE_MARKER

    random_init = bool(cfg.model.tiny_builder) and (Path(adapter.path) / COMPLETE_MARKER).is_file()
    if random_init:
        log.warning(
            "model=%s is randomly initialised (a tiny model built for tests and the CPU demo): its answer and "
            "boxes are noise. For real answers choose a trained model, e.g. model=qwen2_5_vl_3b "
            "model.path=yfan1997/GRIT-20-Qwen2.5-VL-3B, or model.path=<run>/checkpoints/step_<N>/model",
            cfg.model.name,
        )
    return random_init


def run_inference(cfg: Any, run_dir: Path, request: Request | None = None) -> dict[str, Any]:
    """Generate one greedy completion for (image, question); print, draw and save it. Returns the record.

    `request` (from `--image` / `--question`) takes precedence over the config's `image` / `question`."""
    import torch
    from PIL import Image

    from grit_exp.data.prompts import build_user_text
    from grit_exp.data.schema import GritRow
    from grit_exp.models import build_adapter
    from grit_exp.rollout.hf import HFRollout

    image = check_inputs(cfg, request)
    _, question = _request_of(cfg, request)
    torch.manual_seed(cfg.seed)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device
    with Image.open(image) as im:
        width, height = im.size
    row = GritRow(question=question, answer="", image=str(image.resolve()), width=width, height=height,
                  bboxs=[], dataset="infer", split="infer", source="command line")
    adapter = build_adapter(cfg.model, cfg.seed)
    random_init = warn_if_random(adapter, cfg)
    model = adapter.load_model(device)
    user_text = build_user_text(row.question, cfg.prompt, adapter.family)
    rollout = HFRollout(adapter, cfg.rollout).generate(model, [row], [user_text], num_generations=1, greedy=True)
    completion, geometry = rollout.texts[0], rollout.prompt.geometries[0]
    boxes = boxes_in_original(completion, geometry)
    sys.stdout.write(format_result(completion, geometry))
    picture = draw_boxes(image, boxes, Path(cfg.out) if cfg.out else run_dir / "boxes.png")
    sys.stdout.write(f"picture: {picture}\n")
    record = {"image": str(image.resolve()), "question": row.question, "user_text": user_text,
              "model": cfg.model.name, "model_path": adapter.path, "randomly_initialised": random_init,
              "prompt": cfg.prompt.name,
              "completion": completion, "geometry": geometry.to_dict(), "boxes": boxes, "picture": str(picture)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "inference.json").write_text(json.dumps(record, indent=1))
    return record


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="infer")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    with reported_user_errors("infer"):
        validate_groups(cfg)
        check_inputs(cfg, COMMAND_LINE)
        run_inference(cfg, Path(HydraConfig.get().runtime.output_dir), COMMAND_LINE)


if __name__ == "__main__":
    from grit_exp.preflight import preflight

    COMMAND_LINE, sys.argv[1:] = split_command_line(sys.argv[1:])
    preflight(main, "infer", str(CONF_DIR), validate_groups)
    main()
