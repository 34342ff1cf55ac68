"""`python -m grit_exp.infer --image PATH --question TEXT`: one grounded answer, its boxes, and a picture.

Composes conf/app.yaml (the web app's config too: the `model`, `prompt` and `rollout` groups;
default: the offline tiny Qwen2.5-VL, so it runs anywhere) and answers through `GroundedAnswerer`
(grounded_answer.py: the prompt exactly as training and evaluation build it, greedy decoding, the
boxes mapped from the model's frame to original-image pixels), then prints the completion and every
box it wrote, and writes the picture the web app shows (`grounded_answer.picture`: the boxes
numbered as printed, a legend below; to `out=PATH`, default `<run dir>/boxes.png`) plus
`inference.json` in the run dir.

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
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from grit_exp.config import validate_groups
from grit_exp.config.typed import to_typed
from grit_exp.errors import ConfigError
from grit_exp.grounded_answer import AppConfig, GroundedAnswerer, boxes_in_original, picture
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.hydra_app import CONF_DIR
from grit_exp.preflight import preflight, reported_user_errors


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
        value = getattr(cfg, key)
        return None if value is None else str(value)

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


def run_inference(cfg: Any, run_dir: Path, request: Request | None = None) -> dict[str, Any]:
    """Generate one greedy completion for (image, question); print, draw and save it. Returns the record.

    `request` (from `--image` / `--question`) takes precedence over the config's `image` / `question`."""
    image = check_inputs(cfg, request)
    _, question = _request_of(cfg, request)
    answerer = GroundedAnswerer(cfg)
    result = answerer.answer(image, question)
    sys.stdout.write(format_result(result.completion, result.geometry))
    out = Path(cfg.out) if cfg.out else run_dir / "boxes.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    picture(image, result).save(out)
    sys.stdout.write(f"picture: {out}\n")
    record = {"image": result.image, "question": result.question, "user_text": result.user_text,
              "model": cfg.model.name, "model_path": answerer.adapter.path, "randomly_initialised": answerer.random_init,
              "prompt": cfg.prompt.name,
              "completion": result.completion, "geometry": result.geometry.to_dict(), "boxes": result.boxes,
              "picture": str(out)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "inference.json").write_text(json.dumps(record, indent=1))
    return record


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="app")
def main(composed: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    with reported_user_errors("infer"):
        cfg = to_typed(composed, AppConfig)
        validate_groups(cfg)
        check_inputs(cfg, COMMAND_LINE)
        run_inference(cfg, Path(HydraConfig.get().runtime.output_dir), COMMAND_LINE)


if __name__ == "__main__":
    COMMAND_LINE, sys.argv[1:] = split_command_line(sys.argv[1:])
    preflight(main, "app", str(CONF_DIR), validate_groups, AppConfig)
    main()
