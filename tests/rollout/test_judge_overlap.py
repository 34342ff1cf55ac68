"""Answers are judged while the batch still generates (real tiny-model `generate`, real fake judge
server over HTTP), with the same rewards as judging after generation, each answer asked once."""

from __future__ import annotations

import time

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteriaList

from grit_exp.api_keys import SecretStr
from grit_exp.data.prompts import build_user_text
from grit_exp.data.reader import load_dataset_splits
from grit_exp.judge.openai_judge import OpenAIJudge
from grit_exp.models import build_adapter
from grit_exp.rewards import RewardContext, compute_rewards
from grit_exp.rollout.hf import HFRollout, only_these_settings
from grit_exp.rollout.judge_overlap import JudgeAhead, overlaps_generation
from grit_exp.rollout.types import completion_mask
from grit_exp.testing.fake_judge_server import FakeJudgeServer
from tests.helpers.configs import compose_config


class ForceTokens(LogitsProcessor):
    """Row i writes targets[i], then the end of turn."""

    def __init__(self, targets: list[list[int]], prompt_length: int, eos: int):
        self.targets, self.prompt_length, self.eos = targets, prompt_length, eos

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_length
        out = torch.full_like(scores, float("-inf"))
        for row, target in enumerate(self.targets):
            out[row, target[step] if step < len(target) else self.eos] = 0.0
        return out


class Recording:
    def __init__(self, judge):
        self.judge, self.calls = judge, []

    def score(self, requests):
        self.calls.append((time.perf_counter(), len(requests)))
        return self.judge.score(requests)

    def __getattr__(self, name):
        return getattr(self.judge, name)


def test_answers_are_judged_during_generation_with_the_same_rewards(grit_cache, tiny_model_paths):
    cfg = compose_config("train", "dataset.synthetic.num_train=8", "dataset.synthetic.num_val=2",
                         "rollout.max_new_tokens=60", "reward=grit_paper")
    rows, _ = load_dataset_splits(cfg.dataset, cfg.seed)
    rows = rows[:4]
    adapter = build_adapter(cfg.model)
    model = adapter.load_model("cpu")
    texts = [build_user_text(r.question, cfg.prompt, adapter.family) for r in rows]
    prompt = adapter.build_prompt_batch(rows, texts)
    tokenizer = adapter.tokenizer
    answers = [r.answer if i % 2 == 0 else "wrong" for i, r in enumerate(rows)]
    targets = [tokenizer(" x" * (6 * i) + f" <think> a </think> <rethink> b </rethink> <answer> {a} </answer>",
                         add_special_tokens=False)["input_ids"] for i, a in enumerate(answers)]
    targets[3] = targets[3] * 4  # runs into max_new_tokens: judged after generation
    config = HFRollout(adapter, cfg.rollout).generation_config(greedy=True)
    config.stop_strings = None
    eos = adapter.eos_token_ids[0]

    with FakeJudgeServer(latency_s=0.05) as server:
        judge = OpenAIJudge(model="fake-judge", api_key=SecretStr("k"), base_url=server.base_url, concurrency=8)
        assert overlaps_generation(judge, 9) and not overlaps_generation(judge, 8)  # beyond one round of concurrency
        assert not overlaps_generation(object(), 100)
        recording = Recording(judge)
        ahead = JudgeAhead(recording, cfg.reward, adapter, rows, texts)
        with only_these_settings(model, config), torch.no_grad():
            out = model.generate(**prompt.inputs, generation_config=config,
                                 logits_processor=LogitsProcessorList([ForceTokens(targets, prompt.prompt_length, eos)]),
                                 stopping_criteria=StoppingCriteriaList([ahead.observer(prompt.prompt_length)]))
        generated_at = time.perf_counter()
        ids = out[:, prompt.prompt_length:]
        mask = completion_mask(ids, adapter.eos_token_ids) * (ids != adapter.pad_token_id).long()
        completions = adapter.decode_completions(ids, mask)
        ctx = RewardContext(prompts=texts, token_ids=None, judge=ahead.answered,
                            counting_datasets=list(cfg.reward.counting_datasets))
        early = compute_rewards(cfg.reward, completions, rows, ctx)
        ahead.close()
        sent = server.requests

        fresh = OpenAIJudge(model="fake-judge", api_key=SecretStr("k"), base_url=server.base_url, concurrency=8)
        late = compute_rewards(cfg.reward, completions, rows,
                               RewardContext(prompts=texts, token_ids=None, judge=fresh,
                                             counting_datasets=list(cfg.reward.counting_datasets)))
        judge.close()
        fresh.close()

    assert [c.count("<answer>") for c in completions] == [1, 1, 1, 1]
    assert early.total == late.total and early.per_term == late.per_term
    assert early.judge_requests == late.judge_requests == 4 and early.judge_failures == 0
    assert early.per_term["judge_accuracy"] == [1.0, 0.0, 1.0, 0.0]
    assert recording.calls[0][0] < generated_at, "the first answers went out before generation ended"
    assert sum(n for _, n in recording.calls) == 4 and sent == 4, "each answer asked once"
    assert recording.calls[-1][1] == 1, "only the row cut at max_new_tokens waited for the end"
