"""The `rollout` group's schema (conf/rollout/*.yaml) and its checks.

`rollout.kind=vllm` is valid only in a training config: vLLM generates training's rollouts, while
evaluate and infer generate with HF (`check_rollout(..., training=False)` refuses it). Left out:
generating anything (grit_exp.rollout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from grit_exp.config.algorithm import check_truncated_is_rollout
from grit_exp.config.dataset import OnError
from grit_exp.errors import ConfigError


class RolloutKind(StrEnum):
    hf = "hf"
    vllm = "vllm"  # training only
    replay = "replay"


@dataclass
class VLLMRolloutConfig:
    """rollout=vllm: the colocated engine of each training process (grit_exp.rollout.vllm)."""

    gpu_memory_utilization: float = 0.3  # share of the GPU the engine takes (weights + KV cache); the rest trains
    kv_cache_memory_bytes: int | None = None  # an exact KV-cache size instead (required on CPU, e.g. 67108864)
    max_model_len: int | None = None  # prompt + completion tokens; null: model.max_prompt_length + rollout.max_new_tokens
    max_num_seqs: int | None = None  # sequences decoded at once; null: vLLM's default
    enforce_eager: bool = False  # true: no CUDA graphs / torch.compile (faster start, slower decode)
    sleep: bool = True  # GPU only: sleep level 2 (weights and KV cache discarded) during the update


class ZoomTriggerFormat(StrEnum):
    box = "box"  # [x1, y1, x2, y2] between the tags
    bbox_2d_json = "bbox_2d_json"  # a JSON object with a "bbox_2d": [x1, y1, x2, y2] entry between the tags (GRIT / DeepEyes)


@dataclass
class ZoomConfig:
    """rollout.zoom: boxes that act (issue #20). A completion that writes `open_tag ... close_tag` pauses; the
    box (in the family's own frame: Qwen2.5-VL pixels of its resized view of the prompt image, InternVL 0-1000)
    is cropped from the ORIGINAL image and fed back as a new user turn; the completion then continues
    (grit_exp.rollout.zoom). Off by default: single-turn rollouts are unchanged."""

    enabled: bool = False
    max_turns: int = 2  # crops per completion; a call past it gets a text reply instead
    open_tag: str = "<zoom>"
    close_tag: str = "</zoom>"  # writing it ends the model's turn (matched on token ids, like stop strings)
    trigger_format: ZoomTriggerFormat = ZoomTriggerFormat.box
    padding: int = 0  # pixels of the original image added on every side of the box before cropping
    min_size: int = 28  # the crop is widened / heightened around its centre to at least this many original pixels
    crop_min_pixels: int = 3136  # the crop is resized (aspect kept) so its area lies in [min, max] pixels ...
    crop_max_pixels: int = 12544  # ... before the family's processor sees it (its own limits still apply)
    turn_template: str | None = None  # the tool turn's text around "{image}" and "{text}"; null: the family's
    reply_text: str = ""  # text after the crop in the tool turn (e.g. "Here is the zoomed region.")


@dataclass
class RolloutConfig:
    kind: RolloutKind = RolloutKind.hf
    temperature: float = 0.9
    top_k: int = 50
    top_p: float = 1.0
    max_new_tokens: int = 1000
    stop_strings: list[str] = field(default_factory=lambda: ["</answer>"])
    # replay only
    path: str | None = None
    image_root: str | None = None
    on_error: OnError = OnError("raise")
    # vllm only
    vllm: VLLMRolloutConfig = field(default_factory=VLLMRolloutConfig)
    zoom: ZoomConfig = field(default_factory=ZoomConfig)


def check_rollout_kind(rollout: Any, *, training: bool) -> None:
    """ConfigError for a kind that this entry point cannot generate with (vllm outside training)."""
    if not training and rollout.kind == RolloutKind.vllm:
        valid = ", ".join(repr(kind.value) for kind in RolloutKind if kind != RolloutKind.vllm)
        raise ConfigError(f"rollout.kind={str(rollout.kind)!r} is not valid; choose one of {valid}")


def check_rollout(cfg: Any, *, training: bool) -> None:
    """ConfigError naming the rollout.* key that makes no sense (vllm: with the model's family)."""
    rollout = cfg.rollout
    check_rollout_kind(rollout, training=training)
    check_truncated_is_rollout(cfg)  # algorithm.tis needs the sampler's log-probs (rollout=vllm)
    if rollout.kind == RolloutKind.replay and not rollout.path:
        raise ConfigError("rollout.kind=replay needs rollout.path=FILE.jsonl (recorded completions)")
    if rollout.zoom.enabled:
        check_zoom(cfg)
    if rollout.kind != RolloutKind.vllm:
        return
    v = rollout.vllm
    if cfg.model.family != "qwen2_5_vl":
        raise ConfigError(
            f"rollout=vllm supports model.family='qwen2_5_vl' (got {str(cfg.model.family)!r}); use rollout=hf"
        )
    if not 0 < v.gpu_memory_utilization <= 1:
        raise ConfigError(f"rollout.vllm.gpu_memory_utilization={v.gpu_memory_utilization} must be in (0, 1]")
    for key in ("kv_cache_memory_bytes", "max_model_len", "max_num_seqs"):
        if getattr(v, key) is not None and getattr(v, key) < 1:
            raise ConfigError(f"rollout.vllm.{key}={getattr(v, key)} must be >= 1 (or null)")


def check_zoom(cfg: Any) -> None:
    """ConfigError naming the rollout.zoom.* key that makes no sense (checked only with zoom on)."""
    zoom = cfg.rollout.zoom
    if cfg.rollout.kind != RolloutKind.hf:
        raise ConfigError(f"rollout.zoom.enabled=true needs rollout.kind=hf (got {str(cfg.rollout.kind)!r})")
    if getattr(cfg, "algorithm", None) is not None and cfg.algorithm.dynamic_sampling.enabled:
        raise ConfigError("rollout.zoom.enabled=true does not support algorithm.dynamic_sampling.enabled=true yet")
    if zoom.max_turns < 1:
        raise ConfigError(f"rollout.zoom.max_turns={zoom.max_turns} must be >= 1")
    if not zoom.open_tag or not zoom.close_tag or zoom.open_tag == zoom.close_tag:
        raise ConfigError(f"rollout.zoom.open_tag={zoom.open_tag!r} / close_tag={zoom.close_tag!r}: give two "
                          "different non-empty tags")
    if zoom.padding < 0:
        raise ConfigError(f"rollout.zoom.padding={zoom.padding} must be >= 0 (pixels)")
    if zoom.min_size < 1:
        raise ConfigError(f"rollout.zoom.min_size={zoom.min_size} must be >= 1 (pixels)")
    if not 1 <= zoom.crop_min_pixels <= zoom.crop_max_pixels:
        raise ConfigError(f"rollout.zoom.crop_min_pixels={zoom.crop_min_pixels} and crop_max_pixels="
                          f"{zoom.crop_max_pixels} must satisfy 1 <= min <= max")
    if zoom.turn_template is not None and zoom.turn_template.count("{image}") != 1:
        raise ConfigError(f"rollout.zoom.turn_template={zoom.turn_template!r} must hold '{{image}}' exactly once")
