"""Judge answers while the rest of the batch is still generating.

A rollout's rows finish at different decode steps. `JudgeAhead.observer` rides along in `generate`
as a stopping criterion that never stops anything: each step it notices the rows that have just
finished (newest token an end-of-turn, or the padding HF writes after a stop string), decodes them,
builds their judge requests exactly as `compute_rewards` will (the configured judge terms' request
builders) and queues those not asked yet in this rollout (the judge deduplicates within a call; asked
piecemeal, a group's repeated answers would otherwise be sent again). One background thread sends whatever is queued in one `judge.score`
call at a time, so `judge.concurrency` still bounds what is in flight. After generation,
`JudgeAhead.judge` stands in for the judge in `compute_rewards`: requests already answered come
from there, the rest (rows cut at max_new_tokens) go to the judge in one call. Rewards, failures
and the judge's counters are those of the sequential path; only the waiting overlaps.

Used only for judges that wait on a network and only when a rollout's answers exceed the judge's
concurrency (`overlaps_generation`); the rules judge answers in microseconds and gains nothing. Left out: overlapping the next step's generation with this step's
judge (the next rollout needs this step's update: it would be off-policy).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from typing import Any

import torch
from transformers import StoppingCriteria

from grit_exp.rewards.registry import JUDGE_REQUEST_BUILDERS, RewardContext
from grit_exp.rewards.total import _read_config


def overlaps_generation(judge: Any, completions: int) -> bool:
    """Overlap when the judge answers over the network (OpenAI-compatible) and a rollout's answers need
    more than one round of `judge.concurrency`: otherwise they all go out in one round trip after
    generation anyway, and judging alongside only takes CPU from generation (measured:
    benchmarks/README.md). A judge's `overlap_with_generation` attribute, when set, decides instead."""
    explicit = getattr(judge, "overlap_with_generation", None)
    if explicit is not None:
        return bool(explicit)
    from grit_exp.judge.openai_judge import OpenAIJudge

    return isinstance(judge, OpenAIJudge) and completions > judge.concurrency


class _FinishedRows(StoppingCriteria):
    """Reports rows as they finish; never stops a row itself."""

    def __init__(self, owner: JudgeAhead, prompt_length: int):
        self.owner, self.prompt_length = owner, prompt_length
        self.seen: set[int] = set()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        newest = input_ids[:, -1]
        finished = torch.isin(newest, self.owner.end_ids.to(newest.device))
        fresh = [row for row in finished.nonzero().flatten().tolist() if row not in self.seen]
        if fresh:
            self.seen.update(fresh)
            self.owner.submit(fresh, input_ids[fresh, self.prompt_length:].cpu())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class _AnsweredJudge:
    """The judge as `compute_rewards` sees it: answers known requests from the prefetched results."""

    def __init__(self, owner: JudgeAhead):
        self.owner = owner

    def score(self, requests: list[Any]) -> list[Any]:
        results = self.owner.results()
        rest = [r for r in dict.fromkeys(requests) if r not in results]
        if rest:
            results.update(zip(rest, self.owner.judge.score(rest), strict=True))
        return [results[r] for r in requests]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.owner.judge, name)


class JudgeAhead:
    """One rollout's early judging; see the module docstring. `rows` and `prompts`: one per completion."""

    def __init__(self, judge: Any, reward_cfg: Any, adapter: Any, rows: list, prompts: list[str]):
        self.judge, self.adapter, self.rows, self.prompts = judge, adapter, rows, prompts
        weights, self.options, counting = _read_config(reward_cfg)
        self.terms = [t for t in weights if t in JUDGE_REQUEST_BUILDERS]
        self.counting = counting or []
        ends = set(adapter.eos_token_ids) | ({adapter.pad_token_id} if adapter.pad_token_id is not None else set())
        self.end_ids = torch.tensor(sorted(ends))
        self._queue: queue.Queue[tuple[list[Any], Future] | None] = queue.Queue()
        self._futures: list[tuple[list[Any], Future]] = []
        self._asked: set[Any] = set()  # each distinct question once per rollout, as one judge call would
        self._thread = threading.Thread(target=self._send, name="judge-ahead", daemon=True)
        self._thread.start()

    def observer(self, prompt_length: int) -> StoppingCriteria:
        return _FinishedRows(self, prompt_length)

    @property
    def answered(self) -> _AnsweredJudge:
        return _AnsweredJudge(self)

    def submit(self, rows: list[int], completion_ids: torch.Tensor) -> None:
        from grit_exp.rollout.types import completion_mask

        mask = completion_mask(completion_ids, self.adapter.eos_token_ids)
        if self.adapter.pad_token_id is not None:
            mask = mask * (completion_ids != self.adapter.pad_token_id).long()
        texts = self.adapter.decode_completions(completion_ids, mask)
        batch_rows = [self.rows[i] for i in rows]
        ctx = RewardContext(prompts=[self.prompts[i] for i in rows], token_ids=None, judge=None,
                            counting_datasets=self.counting)
        built = [r for t in self.terms
                 for r in JUDGE_REQUEST_BUILDERS[t](texts, batch_rows, ctx, **self.options.get(t, {})) if r is not None]
        requests = [r for r in dict.fromkeys(built) if r not in self._asked]
        self._asked.update(requests)
        if requests:
            future: Future = Future()
            self._futures.append((requests, future))
            self._queue.put((requests, future))

    def _send(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:  # everything queued meanwhile goes in the same call
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            requests = [r for reqs, _ in batch for r in reqs]
            try:
                results = self.judge.score(requests)
            except BaseException as err:  # handed to the step, which raises it
                for _, future in batch:
                    future.set_exception(err)
                continue
            start = 0
            for reqs, future in batch:
                future.set_result(results[start : start + len(reqs)])
                start += len(reqs)

    def results(self) -> dict[Any, Any]:
        """Every prefetched answer (waits for those in flight)."""
        out: dict[Any, Any] = {}
        for requests, future in self._futures:
            out.update(zip(requests, future.result(), strict=True))
        return out

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)
