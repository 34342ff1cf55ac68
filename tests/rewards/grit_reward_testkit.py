"""Test helpers for the reward tests: rows, a tiny exact-match judge, word-level token ids, presets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from omegaconf import OmegaConf

from grit_exp.config import RewardConfig
from grit_exp.data.schema import GritRow
from grit_exp.judge.base import JudgeRequest, JudgeResult, JudgeStats

REPO = Path(__file__).resolve().parents[2]


def make_row(
    dataset: str = "vsr", answer: str = "tv", answer_box=None, bboxs=None, question: str = "What?"
) -> GritRow:
    return GritRow(
        question=question,
        answer=answer,
        image="/nonexistent/img.jpg",
        width=640,
        height=480,
        bboxs=bboxs if bboxs is not None else [[10.0, 20.0, 30.0, 40.0]],
        dataset=dataset,
        source="test.jsonl:1",
        answer_box=answer_box,
    )


class ExactMatchJudge:
    """A test double of the Judge protocol: exact match 1.0, reference contained 0.5, "fail" -> failed."""

    name = "test-exact"

    def __init__(self) -> None:
        self.stats = JudgeStats()
        self.calls: list[list[JudgeRequest]] = []

    def score(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        self.calls.append(list(requests))
        out = []
        for r in requests:
            pred, ref = r.prediction.strip().lower(), r.reference.strip().lower()
            if "fail" in pred:
                out.append(JudgeResult(score=None, raw=None, failed=True, error="forced failure"))
            elif pred == ref:
                out.append(JudgeResult(score=1.0, raw="{score: 1}", failed=False))
            elif ref and ref in pred:
                out.append(JudgeResult(score=0.5, raw="{score: 0.5}", failed=False, cached=True))
            else:
                out.append(JudgeResult(score=0.0, raw="{score: 0}", failed=False))
        return out


def word_token_ids(text: str) -> list[int]:
    """One id per whitespace-separated word; equal words get equal ids."""
    vocab: dict[str, int] = {}
    return [vocab.setdefault(w, len(vocab)) for w in text.split()]


def load_preset(name: str):
    """conf/reward/<name>.yaml merged onto the RewardConfig schema (as Hydra would)."""
    raw = OmegaConf.load(REPO / "conf" / "reward" / f"{name}.yaml")
    assert list(raw.defaults) == ["schema", "_self_"]
    raw.pop("defaults")
    return OmegaConf.merge(OmegaConf.structured(RewardConfig), raw)


def load_cases() -> list[dict]:
    path = Path(__file__).parent / "fixtures" / "reward_cases.py"
    spec = importlib.util.spec_from_file_location("grit_reward_fixture_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES
