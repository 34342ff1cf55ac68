"""A small byte-level BPE trained in-process, for the offline tiny models.

It splits text like Qwen2's tokenizer (same pre-tokenizer pattern, so every digit is its own token)
and carries each family's special tokens at fixed ids after the regular vocabulary. It is NOT the
real Qwen vocabulary: tiny models are for tests and the CPU demo, never for loading real weights.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

# Qwen2's own pre-tokenizer split (digits one by one): training must split exactly as the tokenizer will.
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX as QWEN2_SPLIT_PATTERN

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
INTERNVL_EXTRA_SPECIAL_TOKENS = [
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
    "<video>",
]


def train_byte_level_bpe(
    corpus: Iterable[str], special_tokens: list[str], vocab_size: int = 512
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE on `corpus`; return (vocab, merges) with specials appended at the end.

    The special tokens get ids right after the regular vocabulary, in the order given, so that a
    `Qwen2Tokenizer` built from (vocab, merges) keeps them where the model config expects them.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=2,
    )
    tok.train_from_iterator(list(corpus), trainer=trainer)
    vocab = dict(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))
    # re-number densely, then append the specials
    vocab = {token: i for i, token in enumerate(vocab)}
    for special in special_tokens:
        vocab[special] = len(vocab)
    merges_raw = json.loads(tok.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges_raw]
    return vocab, merges  # type: ignore[return-value]


# Qwen2.5-VL's chat template (the tiny and the real-width builders write it into their processors)
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
