"""One path that answers (image, question) with grounded reasoning: for `grit_exp.infer` and the web app.

`AppConfig` is the one schema of both entry points (conf/app.yaml: the `model`, `prompt` and
`rollout` groups, seed, device; `image` / `question` / `out` for infer, `server` for the web app).
`GroundedAnswerer` builds the adapter and loads the model once, then for each request does what
evaluation does: a `GritRow` for the image, the user text from the configured prompt
(`build_user_text`), one greedy `HFRollout.generate`, the boxes from `parse_boxes` mapped from the
model's frame to original pixels (`boxes_in_original`: `ImageGeometry.model_to_original`, exact,
not clipped), the answer from `<answer>` (`answer_text`, as the judge reads it). `picture` draws the
boxes numbered 1..k with a legend inside the image (`evaluation.pictures`); `reasoning_html` puts the
same numbers, in the same colours, in front of each box in the text (`evaluation.html_report.boxes_html`).
A randomly initialised model (the tiny default) is announced with a warning: its answers are noise.

Left out: the command line and what it prints (`infer.py`), the page (`web_app.py`), judging (there
is no ground truth), batches (use evaluate).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING
from PIL import Image

from grit_exp.config import ModelConfig, PathsConfig, PromptConfig, RolloutConfig
from grit_exp.evaluation.html_report import boxes_html
from grit_exp.evaluation.pictures import add_legend, draw_numbered_boxes, open_for_view
from grit_exp.grounding.boxes import parse_boxes
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.rewards.answer_terms import answer_text

log = logging.getLogger("grit_exp.grounded_answer")

BOX_COLORS = ((230, 20, 20), (20, 120, 230), (20, 170, 60), (200, 120, 0), (150, 40, 200), (0, 160, 160))
LEGEND_ROWS = 8  # boxes listed one per line in the picture's legend; more are summed up in one line




@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 7860  # 0: a free port


@dataclass
class AppConfig:
    """conf/app.yaml: `python -m grit_exp.infer` and `python -m grit_exp.web_app`."""

    seed: int = 0
    paths: PathsConfig = field(default_factory=PathsConfig)
    model: ModelConfig = MISSING
    prompt: PromptConfig = MISSING
    rollout: RolloutConfig = MISSING
    device: str = "auto"  # "auto" (cuda when available, else cpu) or a torch device string
    image: str | None = None  # infer: the image file (or --image)
    question: str | None = None  # infer: the question (or --question)
    out: str | None = None  # infer: the picture with boxes; null: <run dir>/boxes.png
    server: ServerConfig = field(default_factory=ServerConfig)  # the web app


ConfigStore.instance().store(name="app_schema", node=AppConfig)


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


@dataclass
class GroundedAnswer:
    image: str  # the image file, resolved
    question: str
    user_text: str
    completion: str
    answer: str | None  # the text between <answer> and </answer>; None when there is none
    boxes: list[dict[str, Any]]  # `boxes_in_original` entries, in the order written
    spans: list[tuple[int, int]]  # each box's place in the completion
    geometry: ImageGeometry  # the model's frame of this image
    zoom_calls: list[Any] | None = None  # the completion's ZoomCall records (rollout.zoom on); None when off


def hex_color(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


class GroundedAnswerer:
    """The adapter and model of `cfg` (an `AppConfig`: model, prompt, rollout, seed, device), loaded once."""

    def __init__(self, cfg: Any) -> None:
        import torch

        from grit_exp.models import build_adapter
        from grit_exp.rollout.hf import HFRollout

        self.cfg = cfg
        torch.manual_seed(int(cfg.seed))
        device = ("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else str(cfg.device)
        self.adapter = build_adapter(cfg.model, int(cfg.seed), cache_dir=cfg.paths.cache_dir)
        self.random_init = warn_if_random(self.adapter, cfg)
        self.model = self.adapter.load_model(device)
        self.model.eval()
        self.rollout = HFRollout(self.adapter, cfg.rollout)
        self.lock = threading.Lock()  # one generate at a time: the page may get concurrent requests

    def answer(self, image_path: str | Path, question: str) -> GroundedAnswer:
        from grit_exp.data.prompts import build_user_text
        from grit_exp.data.schema import GritRow

        image = Path(image_path)
        with Image.open(image) as im:
            width, height = im.size
        row = GritRow(question=question, answer="", image=str(image.resolve()), width=width, height=height,
                      bboxs=[], dataset="app", split="app", source="one image")
        user_text = build_user_text(question, self.cfg.prompt, self.adapter.family)
        with self.lock:
            result = self.rollout.generate(self.model, [row], [user_text], num_generations=1, greedy=True)
        completion, geometry = result.texts[0], result.prompt.geometries[0]
        spans = [tuple(parsed.span) for parsed in parse_boxes(completion)]
        zoom_calls = result.zoom_calls[0] if result.zoom_calls is not None else None
        return GroundedAnswer(row.image, question, user_text, completion, answer_text(completion),
                              boxes_in_original(completion, geometry), spans, geometry, zoom_calls)


def picture(image_path: str | Path, result: GroundedAnswer) -> Image.Image:
    """The image (resized for viewing) with box i outlined and tagged "i" in BOX_COLORS, and a legend band."""
    image, scale = open_for_view(str(image_path))
    size = (result.geometry.orig_width, result.geometry.orig_height)
    drawn = set(draw_numbered_boxes(image, [b["original"] for b in result.boxes], scale, BOX_COLORS, size))
    legend = []
    for number, box in enumerate(result.boxes[:LEGEND_ROWS], start=1):
        if box["label"]:
            what = str(box["label"])
        else:
            what = f"in <{box['section']}>" if box["section"] != "none" else "outside the tags"
        state = "" if number in drawn else " (encloses nothing: not drawn)"
        legend.append((BOX_COLORS[(number - 1) % len(BOX_COLORS)], f"box {number}: {what}{state}"))
    if len(result.boxes) > LEGEND_ROWS:
        legend.append(((90, 90, 90), f"... and {len(result.boxes) - LEGEND_ROWS} more, numbered as in the text"))
    if not result.boxes:
        legend.append(((90, 90, 90), "the model wrote no boxes"))
    return add_legend(image, legend)


def reasoning_html(result: GroundedAnswer) -> str:
    """The completion, escaped, with each box's number in its colour in front of it (as in the picture)."""
    colors = [hex_color(c) for c in BOX_COLORS]
    return ('<pre class="grounded-reasoning" style="white-space:pre-wrap;word-break:break-word">'
            f"{boxes_html(result.completion, result.spans, colors)}</pre>")
