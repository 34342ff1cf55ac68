"""The generation settings of rollouts and greedy evaluation, built from the config tree only.

A checkpoint's `generation_config.json` is never consulted: Qwen2.5-VL-3B-Instruct ships
`repetition_penalty: 1.05` (and others ship top_k / top_p / min_p), which `generate` would
otherwise merge into every call without a word. `generation_settings` is the one description of
what is in effect, used to build the `transformers.GenerationConfig` (`rollout/hf.py`) and written
into `metrics.json` `_meta` and `run_info.json`. Nothing heavy is imported here.

Left out: the token ids (end of turn, padding, suppressed specials), which come from the model's
tokenizer (`ModelAdapter.generation_kwargs`), and generating anything.
"""

from __future__ import annotations

from typing import Any

# Every penalty or filter `generate` could apply, set to its neutral value, so none can come from elsewhere.
NEUTRAL_SETTINGS: dict[str, Any] = {
    "num_beams": 1,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "length_penalty": 1.0,
    "min_new_tokens": 0,
}


def generation_settings(rollout_cfg: Any, greedy: bool) -> dict[str, Any]:
    """The settings of one kind of generation: sampled rollouts (`rollout.temperature`, `top_k`,
    `top_p`) or greedy decoding (evaluation, infer); both stop at `rollout.stop_strings` and after
    `rollout.max_new_tokens` tokens."""
    settings: dict[str, Any] = {"do_sample": not greedy, "max_new_tokens": int(rollout_cfg.max_new_tokens)}
    if greedy:
        settings.update(temperature=None, top_k=None, top_p=None)
    else:
        settings.update(
            temperature=float(rollout_cfg.temperature), top_k=int(rollout_cfg.top_k), top_p=float(rollout_cfg.top_p)
        )
    settings["stop_strings"] = list(rollout_cfg.stop_strings or [])
    settings.update(NEUTRAL_SETTINGS)
    return settings


def generation_record(rollout_cfg: Any) -> dict[str, Any]:
    """What run_info.json records: the sampled and the greedy settings, and where they come from."""
    return {
        "source": "the config tree (rollout.*); the checkpoint's generation_config.json is ignored",
        "sampling": generation_settings(rollout_cfg, greedy=False),
        "greedy": generation_settings(rollout_cfg, greedy=True),
    }
