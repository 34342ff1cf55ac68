"""The model adapter interface shared by all families.

An adapter owns what differs between model families: the processor, how a dataset row and its
prompt text become left-padded chat inputs, the coordinate frame of the family's boxes (an
`ImageGeometry` per image), the extra inputs a forward pass needs to reproduce generation
(Qwen's `mm_token_type_ids`), which parameters are the vision tower / projector / LLM, and the
generation settings (stop tokens, suppressed special tokens). It does not sample, score or
train: rollout, rewards and policy modules do that with what the adapter gives them.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image
from transformers import BatchFeature, GenerationConfig, PreTrainedModel

from grit_exp.data.schema import GritRow
from grit_exp.grounding.frames import ImageGeometry
from grit_exp.models.unwrap import can_keep_cache

if TYPE_CHECKING:
    from grit_exp.models.zoom_logprobs import ToolTurnInputs

log = logging.getLogger(__name__)

TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Special tokens that are part of what a model writes: Qwen's and InternVL's grounding syntax. They
# may be sampled and stay in decoded text; every other special token except the end-of-turn is
# structural (image / video placeholders, <|im_start|>, padding) and is never sampled.
GROUNDING_TOKENS = (
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
    "<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>",
)


@dataclass
class PromptBatch:
    """Processor outputs for a batch of prompts, plus what is needed to read the model's boxes."""

    inputs: BatchFeature  # input_ids, attention_mask, pixel_values and family-specific keys
    geometries: list[ImageGeometry]
    user_texts: list[str]
    image_slices: list[tuple[int, int]]  # per prompt: [start, end) rows of inputs["pixel_values"]
    # per row: which distinct prompt it is (rows with the same index hold identical inputs: a group's
    # completions, `repeat_interleave`); None: every row distinct
    prompt_index: list[int] | None = None

    @property
    def prompt_length(self) -> int:
        return int(self.inputs["input_ids"].shape[1])

    def __len__(self) -> int:
        return int(self.inputs["input_ids"].shape[0])

    def to(self, device: torch.device | str) -> PromptBatch:
        return PromptBatch(self.inputs.to(device), self.geometries, self.user_texts, self.image_slices,
                           self.prompt_index)

    def repeat_interleave(self, n: int) -> PromptBatch:
        """Each prompt n times in a row (G completions per prompt), images processed only once."""
        repeated = self.take([i for i in range(len(self)) for _ in range(n)])
        ids = self.prompt_index if self.prompt_index is not None else range(len(self))
        return replace(repeated, prompt_index=[p for p in ids for _ in range(n)])

    def take(self, rows: list[int]) -> PromptBatch:
        """These rows (in this order, repeats allowed), with their image rows."""
        index = torch.tensor(rows, dtype=torch.long)
        data: dict[str, Any] = {k: v.index_select(0, index.to(v.device)) for k, v in self.inputs.items()
                                if torch.is_tensor(v) and k != "pixel_values"}
        pixel_rows, slices, start = [], [], 0
        for row in rows:
            a, b = self.image_slices[row]
            pixel_rows.append(self.inputs["pixel_values"][a:b])
            slices.append((start, start + b - a))
            start += b - a
        data["pixel_values"] = torch.cat(pixel_rows, dim=0)
        return PromptBatch(
            type(self.inputs)(data),
            [self.geometries[r] for r in rows],
            [self.user_texts[r] for r in rows],
            slices,
            None if self.prompt_index is None else [self.prompt_index[r] for r in rows],
        )

    def distinct_prompts(self) -> tuple[list[int], list[int]]:
        """(the first row of each distinct prompt, for each row the position of its prompt in that list)."""
        first: dict[int, int] = {}
        ids = self.prompt_index if self.prompt_index is not None else list(range(len(self)))
        for row, prompt in enumerate(ids):
            first.setdefault(prompt, row)
        order = {prompt: i for i, prompt in enumerate(first)}
        return list(first.values()), [order[p] for p in ids]


class ModelAdapter(ABC):
    """One model family. Subclasses set `family`, `model_class` and implement the abstract methods."""

    family: str
    model_class: type[PreTrainedModel]

    def __init__(self, cfg: Any, path: str):
        self.cfg = cfg
        self.path = path
        self.processor = self._load_processor()
        self.tokenizer = self.processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.eos_token_ids = self._eos_token_ids()
        self.pad_token_id = self.tokenizer.pad_token_id
        self.suppressed_token_ids = self._suppressed_token_ids()

    # ------------------------------------------------------------------ family-specific parts
    @abstractmethod
    def _load_processor(self) -> Any: ...

    @abstractmethod
    def _geometry(self, row: GritRow, inputs: BatchFeature, index: int) -> ImageGeometry: ...

    @abstractmethod
    def _image_slices(self, inputs: BatchFeature) -> list[tuple[int, int]]: ...

    @abstractmethod
    def parameter_groups(self, model: PreTrainedModel) -> dict[str, list[torch.nn.Parameter]]:
        """The parameters of the "vision" tower, the "projector" and the "llm" (for freezing).

        With tied embeddings the LM head shares the input embedding, which belongs to "llm"."""

    def extra_forward_inputs(self, prompt: PromptBatch, completion_ids: torch.Tensor) -> dict[str, Any]:
        """Family-specific inputs a forward pass over prompt + completion needs (none by default)."""
        return {}

    # ------------------------------------------------------------------ shared behaviour
    def _eos_token_ids(self) -> list[int]:
        ids = {self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return sorted(i for i in ids if i is not None and i >= 0)

    def _suppressed_token_ids(self) -> list[int]:
        """Special tokens the policy must never sample (an untrained model would emit image pads):
        every special token except the end-of-turn ones and the grounding syntax (`GROUNDING_TOKENS`)."""
        vocab = self.tokenizer.get_vocab()
        keep = set(self.eos_token_ids) | {vocab[t] for t in GROUNDING_TOKENS if t in vocab}
        return sorted(set(self.tokenizer.all_special_ids) - keep)

    def decode_completions(self, completion_ids: torch.Tensor, completion_mask: torch.Tensor) -> list[str]:
        """The text of each completion: its real tokens (mask 1) without end-of-turn, padding and the
        other never-sampled special tokens. Grounding tokens (`<ref>`, `<box>`, `<|box_start|>` ...)
        stay in the text: `skip_special_tokens=True` would strip them with the rest."""
        dropped = set(self.eos_token_ids) | set(self.suppressed_token_ids)
        if self.pad_token_id is not None:
            dropped.add(self.pad_token_id)
        rows = [
            [t for t, m in zip(ids.tolist(), mask.tolist(), strict=True) if m and t not in dropped]
            for ids, mask in zip(completion_ids, completion_mask, strict=True)
        ]
        return self.tokenizer.batch_decode(rows, skip_special_tokens=False)

    def chat_text(self, user_text: str) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": user_text}]}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def build_prompt_batch(self, rows: list[GritRow], user_texts: list[str]) -> PromptBatch:
        """Open the images, apply the chat template, and process into left-padded tensors."""
        if len(rows) != len(user_texts):
            raise ValueError(f"{len(rows)} rows but {len(user_texts)} prompt texts")
        images = []
        for row in rows:
            with Image.open(row.image) as im:
                images.append(im.convert("RGB"))
        texts = [self.chat_text(t) for t in user_texts]
        inputs = self.processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")
        self._check_prompt_lengths(rows, inputs)
        geometries = [self._geometry(row, inputs, i) for i, row in enumerate(rows)]
        return PromptBatch(inputs, geometries, list(user_texts), self._image_slices(inputs))

    def _check_prompt_lengths(self, rows: list[GritRow], inputs: BatchFeature) -> None:
        """DataError naming the row (file:line) whose prompt is longer than `model.max_prompt_length`.

        Refused, not truncated: cutting a multimodal prompt drops image placeholder tokens (the model
        then fails on a mismatch of image features and tokens) or the question, so the model would
        be trained or scored on an input nobody wrote."""
        from grit_exp.errors import DataError

        limit = int(self.cfg.max_prompt_length)
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
        image_ids = {self.processor.image_token_id} if getattr(self.processor, "image_token_id", None) is not None else set()
        for row, ids, length in zip(rows, inputs["input_ids"], lengths, strict=True):
            if length > limit:
                image = sum(int((ids == i).sum()) for i in image_ids)
                raise DataError(
                    f"the prompt is {length} tokens ({image} of them image tokens), longer than model.max_prompt_length="
                    f"{limit}; shorten the question or the prompt's text, lower model.max_pixels (Qwen) / model.max_tiles "
                    "(InternVL) for fewer image tokens, or raise model.max_prompt_length",
                    reason="prompt_too_long", location=row.source or f"row {row.question[:40]!r}",
                )

    def load_model(self, device: torch.device | str = "cpu", path: str | None = None,
                   dtype: str | None = None) -> PreTrainedModel:
        """Load the weights (from `path` if given, e.g. a checkpoint) and apply the freezing config.

        Stored in `dtype`, default `model.dtype` (frozen copies, inference); the trainer loads
        trainable weights as "float32" (master weights) whatever `model.dtype` says."""
        dtype = TORCH_DTYPES[dtype or self.cfg.dtype]
        if self.cfg.attn_implementation == "flash_attention_2":
            import flash_attn  # noqa: F401  (the optional `gpu` extra; fail here, clearly, if absent)
        model = self.model_class.from_pretrained(
            path or self.path, dtype=dtype, attn_implementation=self.cfg.attn_implementation
        )
        model.to(device)
        if self.cfg.gradient_checkpointing:  # training forwards pass use_cache=False; generation keeps its KV cache
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        groups = self.parameter_groups(model)
        for name, frozen in (("vision", self.cfg.freeze_vision), ("projector", self.cfg.freeze_projector), ("llm", self.cfg.freeze_llm)):
            if frozen:
                for param in groups[name]:
                    param.requires_grad_(False)
        return model

    def save_model_dir(self, model: PreTrainedModel, out_dir: Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write a complete Hugging Face model directory: weights (from `state_dict` when given, e.g.
        consolidated from engine shards), config.json, a generation_config.json of our settings
        (`saved_generation_config`: nothing inherited from the starting checkpoint's), the processor
        (image processor, chat template, processor_config.json) and the tokenizer files.

        `from_pretrained` of the family's class, the family's processor, `AutoProcessor` (with
        grit_exp imported: see `processors.py`) and this adapter with `model.path=<out_dir>` load it."""
        from grit_exp.models.processors import VIDEO_PROCESSOR_TYPES

        out_dir = Path(out_dir)
        model.save_pretrained(out_dir, state_dict=state_dict, safe_serialization=True)
        self.saved_generation_config().save_pretrained(out_dir)
        self.processor.save_pretrained(out_dir)
        self.tokenizer.save_pretrained(out_dir)
        processor_config = out_dir / "processor_config.json"
        data = json.loads(processor_config.read_text())
        data["video_processor"] = {"video_processor_type": VIDEO_PROCESSOR_TYPES[type(self.processor)]}
        processor_config.write_text(json.dumps(data, indent=2) + "\n")

    def saved_generation_config(self) -> GenerationConfig:
        """The generation_config.json of a saved model: our end-of-turn and padding ids, greedy, every
        penalty neutral. A checkpoint's own (e.g. repetition_penalty 1.05) is not carried over."""
        from grit_exp.rollout.generation import NEUTRAL_SETTINGS

        return GenerationConfig(
            do_sample=False, eos_token_id=self.eos_token_ids, pad_token_id=self.pad_token_id, **NEUTRAL_SETTINGS
        )

    def generation_kwargs(self) -> dict[str, Any]:
        return {
            "eos_token_id": self.eos_token_ids,
            "pad_token_id": self.pad_token_id,
            "suppress_tokens": self.suppressed_token_ids,
        }

    def forward_inputs(
        self, prompt: PromptBatch, completion_ids: torch.Tensor, completion_mask: torch.Tensor
    ) -> dict[str, Any]:
        """Inputs for one forward pass over prompt + completion that reproduces generation."""
        inputs = prompt.inputs
        data = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
        data["input_ids"] = torch.cat([inputs["input_ids"], completion_ids], dim=1)
        data["attention_mask"] = torch.cat([inputs["attention_mask"], completion_mask.to(inputs["attention_mask"].dtype)], dim=1)
        data.update(self.extra_forward_inputs(prompt, completion_ids))
        return data

    def turn_positions(self, model: torch.nn.Module, sequence: torch.Tensor, image_grid_thw: torch.Tensor | None,
                       last: torch.Tensor, n: int) -> torch.Tensor:
        """Position ids of the last `n` tokens of `sequence` (one row's whole conversation so far, no padding:
        a tool turn just appended), the token before them being at `last` (the decode loop's layout for one
        row). 1-D RoPE: counting on."""
        return last + torch.arange(1, n + 1, device=last.device)

    def continuation_positions(
        self, model: torch.nn.Module, prompt: PromptBatch, length: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Position ids of the prompt and of the `length` tokens that follow it, as a forward pass over
        the whole sequence would use them (for a forward in two parts, `completion_logprobs`).
        (None, None): the model's default, counting on from the cache (1-D RoPE)."""
        return None, None

    def completion_logprobs(
        self,
        model: PreTrainedModel,
        prompt: PromptBatch,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        temperature: float = 1.0,
        tool_turns: ToolTurnInputs | None = None,
    ) -> torch.Tensor:
        """Per-token log-probs of `completion_ids` under `model`, shape [batch, completion_len].

        `tool_turns` (zoom turns): the completions hold tool turns, attended to but given no log-prob
        (`models/zoom_logprobs.py`); `completion_mask` then marks the model-written tokens only.

        Logits are divided by `temperature` (GRPO passes the sampling temperature unless
        `algorithm.logprob_temperature=one`) and suppressed special tokens are masked out of the
        softmax as in generation; top-k / top-p truncation is not applied, so these are the log-probs
        of the tempered full distribution (as TRL computes them), equal to generation's scores only
        at temperature 1 without truncation. Positions where `completion_mask` is 0 are filled with 0
        (never -inf: a NaN from exp(-inf + inf) would poison the backward pass).

        Rows that share a prompt (`prompt.prompt_index`: a group's completions) share its forward pass:
        the prompt (vision tower included) runs once, its KV cache is copied to each of its completions,
        which then run over it; gradients reach the prompt's positions through the copies
        (`_shared_prompt_logits`). Where the model cannot keep a cache (gradient checkpointing while
        training), one forward pass runs over prompt + completion.

        The number of forward passes depends on the model's settings only, never on the batch: two
        (prompts, then completions) whether or not the prompts repeat and however long the completions
        are, one under gradient checkpointing. Every process then runs as many, which ZeRO-3 (a parameter
        gather per forward) and DDP (a buffer broadcast per forward) need: a process whose micro-batch
        held one completion, or only one-token completions, would otherwise run one pass fewer and the
        others would wait for it forever.
        """
        if tool_turns is not None:
            from grit_exp.models.zoom_logprobs import tool_turn_logprobs

            return tool_turn_logprobs(self, model, prompt, completion_ids, completion_mask, tool_turns, temperature)
        if can_keep_cache(model):
            firsts, source = prompt.distinct_prompts()
            logits = self._shared_prompt_logits(model, prompt, firsts, source, completion_ids, completion_mask)
        else:
            logits = self.one_pass_logits(model, prompt, completion_ids, completion_mask)
        from grit_exp.models.logprobs import selected_token_logprobs

        # chunked over positions, no float32 copy of the whole [batch, length, vocab] logits (models/logprobs.py)
        token_logprobs = selected_token_logprobs(logits, completion_ids, temperature, self.suppressed_token_ids)
        return token_logprobs.masked_fill(completion_mask == 0, 0.0)

    def one_pass_logits(self, model: torch.nn.Module, prompt: PromptBatch, completion_ids: torch.Tensor,
                        completion_mask: torch.Tensor) -> torch.Tensor:
        """The logits predicting each completion token [batch, t, vocab] from one forward pass over prompt +
        completion (under gradient checkpointing; the reference the two-pass computation is tested against).
        Only the positions p-1 .. p+t-2 reach the lm head: over the prompt it would be wasted work, and with
        a 150k vocabulary a lot of memory."""
        t = completion_ids.shape[1]
        out = model(**self.forward_inputs(prompt, completion_ids, completion_mask), use_cache=False,
                    logits_to_keep=t + 1)
        return out.logits[:, :-1, :]

    def _shared_prompt_logits(
        self,
        model: torch.nn.Module,
        prompt: PromptBatch,
        firsts: list[int],
        source: list[int],
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
    ) -> torch.Tensor:
        """The logits predicting each completion token [batch, t, vocab]: one pass over the distinct
        prompts (its last position predicts every completion's first token), then one over the
        completions' tokens 0 .. t-2 attending to their prompt's copied cache. The positions, masks and
        attended tokens are those of the single pass over prompt + completion."""
        distinct = prompt.take(firsts)
        t = completion_ids.shape[1]
        prompt_positions, next_positions = self.continuation_positions(model, distinct, max(t - 1, 1))
        out = model(**distinct.inputs, position_ids=prompt_positions, use_cache=True, logits_to_keep=1)
        index = torch.tensor(source, dtype=torch.long, device=completion_ids.device)
        first = out.logits[:, -1:, :].index_select(0, index)
        cache = out.cache
        cache.batch_select_indices(index)
        prompt_mask = prompt.inputs["attention_mask"]
        positions = None if next_positions is None else next_positions.index_select(-2, index)
        if t == 1:
            # Nothing left to predict, but the second pass still runs (see completion_logprobs) and stays in the
            # autograd graph through an empty slice: ZeRO-3 gathers parameters and reduce-scatters gradients
            # once per forward pass in the graph, in the backward too, so every process must have as many.
            mask = torch.cat([prompt_mask, completion_mask.to(prompt_mask.dtype)], dim=1)
            rest = model(input_ids=completion_ids, attention_mask=mask, position_ids=positions, cache=cache,
                         use_cache=True)
            return torch.cat([first, rest.logits[:, :0]], dim=1)
        mask = torch.cat([prompt_mask, completion_mask[:, :-1].to(prompt_mask.dtype)], dim=1)
        rest = model(input_ids=completion_ids[:, :-1], attention_mask=mask, position_ids=positions, cache=cache,
                     use_cache=True)
        return torch.cat([first, rest.logits], dim=1)
