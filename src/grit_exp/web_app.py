"""`python -m grit_exp.web_app [model.path=...]`: a Gradio page to ask a model about an image.

A person uploads an image and asks a question; the page shows the answer, the grounded reasoning with
a numbered tag in front of each box, and the image with the same boxes drawn, numbered and
coloured alike, with a legend inside the picture. The model answers through `GroundedAnswerer`: the
same adapter, prompt and box parsing as evaluation, and the same path as `grit_exp.infer`, greedy
decoding. Composes conf/app.yaml, infer's config too (model, prompt, rollout groups; `server.host` /
`server.port`, port 0 = a free one; `image` / `question` / `out` are infer's and unused here).

    python -m grit_exp.web_app model.path=outputs/<date>/<time>/checkpoints/step_30/model
    python -m grit_exp.web_app model=qwen2_5_vl_3b model.path=yfan1997/GRIT-20-Qwen2.5-VL-3B server.port=8080

Gradio is an optional extra (`pip install -e '.[web]'`); without it the command says so in one
line. Gradio does the serving (HTTP, uploads, queue); this module only lays out the page. Nothing is
sent anywhere: analytics are off and there is no share link.

With zoom turns (rollout.zoom.enabled=true) the page also shows each turn: the crop the model asked for,
beside its box drawn on the original (`zoom_turns_html`; the answer's `zoom_calls`, one list).

Left out: judging answers (there is no ground truth), several images at once (use evaluate).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from grit_exp.config import validate_groups
from grit_exp.config.typed import to_typed
from grit_exp.errors import ConfigError
from grit_exp.grounded_answer import (  # registers app_schema
    AppConfig,
    GroundedAnswerer,
    picture,
    reasoning_html,
)
from grit_exp.hydra_app import CONF_DIR
from grit_exp.preflight import preflight, reported_user_errors

log = logging.getLogger("grit_exp.web_app")

RANDOM_MODEL_NOTE = ("This model is randomly initialised (a tiny model for tests and the CPU demo): its answers and "
                     "boxes are noise. Start the web app with model.path=<run>/checkpoints/step_<N>/model or a real "
                     "model.")


def import_gradio() -> Any:
    try:
        import gradio
    except ImportError as err:
        raise ConfigError("the web app needs Gradio, an optional extra: pip install -e '.[web]'") from err
    return gradio


def zoom_turns_html(image_path: str, calls: list[Any] | None) -> str:
    """The answer's zoom turns, each crop inline beside its box on the original; "" when zoom is off."""
    if calls is None:
        return ""
    import base64
    import io

    from PIL import Image

    from grit_exp.evaluation.zoom_pictures import turn_image, zoom_html

    with Image.open(image_path) as image:
        size = image.size
    pictures: dict[str, str] = {}
    for call in calls:
        if call.ok:
            buffer = io.BytesIO()
            turn_image(image_path, size, list(call.crop_box), []).save(buffer, format="PNG")
            pictures[f"turn {call.turn}"] = base64.b64encode(buffer.getvalue()).decode()
    record = {"zoom": {"num_crops": len(pictures), "calls": [
        {"turn": c.turn, "trigger_text": c.trigger_text, "ok": c.ok, "crop_box": list(c.crop_box) if c.ok else None,
         "error": c.error} for c in calls]}}

    def tag(_: Any, alt: str) -> str:
        return f'<img src="data:image/png;base64,{pictures[alt]}" alt="{alt}" style="max-width:100%">'

    return zoom_html(record, [Path(f"turn {c.turn}") if c.ok else None for c in calls], tag)


def build_page(answerer: Any) -> Any:
    """The Gradio Blocks of the web app around a loaded `GroundedAnswerer`."""
    gr = import_gradio()

    def ask(image_path: str | None, question: str) -> tuple[Any, str, str]:
        if not image_path:
            raise gr.Error("Upload an image first.")
        if not (question or "").strip():
            raise gr.Error("Type a question.")
        result = answerer.answer(image_path, question.strip())
        answer = result.answer if result.answer is not None else "(the model wrote no <answer>)"
        summary = f"{len(result.boxes)} box(es), numbered 1..{len(result.boxes)} in the text and the picture" \
            if result.boxes else "no boxes in the reasoning"
        turns = zoom_turns_html(image_path, result.zoom_calls)
        return picture(image_path, result), answer, f"<p>{summary}</p>{reasoning_html(result)}{turns}"

    cfg = answerer.cfg
    with gr.Blocks(title="grit-exp: grounded reasoning", analytics_enabled=False) as page:
        gr.Markdown(f"# Grounded reasoning\nModel **{cfg.model.name}** (`{answerer.adapter.path}`), prompt "
                    f"**{cfg.prompt.name}**, greedy decoding, at most {cfg.rollout.max_new_tokens} new tokens.")
        if answerer.random_init:
            gr.Markdown(f"**Note:** {RANDOM_MODEL_NOTE}", elem_id="random-model-note")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="filepath", label="Image", elem_id="image-input")
                question = gr.Textbox(label="Question", placeholder="How many red squares are there?",
                                      elem_id="question-input")
                submit = gr.Button("Ask", variant="primary", elem_id="ask-button")
            with gr.Column():
                drawn = gr.Image(type="pil", label="Boxes (numbered as in the reasoning)", elem_id="boxes-picture",
                                 interactive=False, format="png")
                answer = gr.Textbox(label="Answer", elem_id="answer-output", interactive=False)
                reasoning = gr.HTML(label="Grounded reasoning", elem_id="reasoning-output")
        submit.click(ask, inputs=[image, question], outputs=[drawn, answer, reasoning])
        question.submit(ask, inputs=[image, question], outputs=[drawn, answer, reasoning])
    return page


def serve(cfg: Any) -> None:
    """Load the model, then serve the page until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "grit_exp_web_app"))  # uploads
    import_gradio()  # fail in one line before loading a model
    answerer = GroundedAnswerer(cfg)
    page = build_page(answerer)
    port = int(cfg.server.port) or None  # None: Gradio picks a free port from 7860 on
    page.queue(default_concurrency_limit=1)
    page.launch(server_name=str(cfg.server.host), server_port=port, share=False, show_error=True, quiet=False)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="app")
def main(composed: DictConfig) -> None:
    with reported_user_errors("web_app"):
        cfg = to_typed(composed, AppConfig)
        validate_groups(cfg)
        serve(cfg)


if __name__ == "__main__":
    preflight(main, "app", str(CONF_DIR), validate_groups, AppConfig)
    sys.exit(main())
