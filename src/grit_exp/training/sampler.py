"""A deterministic prompt sampler whose position is part of the checkpoint.

Each epoch is a permutation of the training rows drawn from (seed, epoch); the sampler hands out
consecutive prompts across epoch boundaries. Its state is two integers, so a resumed run sees
exactly the prompts an uninterrupted run would have seen.
"""

from __future__ import annotations

import random


class PromptSampler:
    def __init__(self, num_rows: int, seed: int):
        if num_rows < 1:
            raise ValueError("the training set is empty")
        self.num_rows = num_rows
        self.seed = seed
        self.epoch = 0
        self.position = 0
        self._order = self._permutation(0)

    def _permutation(self, epoch: int) -> list[int]:
        order = list(range(self.num_rows))
        random.Random(f"{self.seed}/{epoch}").shuffle(order)
        return order

    def next_indices(self, n: int) -> list[int]:
        out = []
        while len(out) < n:
            if self.position == self.num_rows:
                self.epoch += 1
                self.position = 0
                self._order = self._permutation(self.epoch)
            out.append(self._order[self.position])
            self.position += 1
        return out

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "num_rows": self.num_rows, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["num_rows"] != self.num_rows or state["seed"] != self.seed:
            raise ValueError(
                f"checkpoint sampler was for {state['num_rows']} rows / seed {state['seed']}, "
                f"this run has {self.num_rows} rows / seed {self.seed}: the data or seed changed"
            )
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._permutation(self.epoch)
