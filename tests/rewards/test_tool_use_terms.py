"""Tool-use reward terms (issue #20): each term on hand-built zoom calls, zoom off scores 0, DeepEyes'
preset against its formula, and the config checks."""

from __future__ import annotations

import pytest
from grit_reward_testkit import REPO, ExactMatchJudge, make_row
from omegaconf import OmegaConf

from grit_exp.config import RewardConfig
from grit_exp.rewards import RewardContext, RewardOptionError, check_reward_config, compute_rewards
from grit_exp.rewards.tool_use import deepeyes_format_error, gold_coverage
from grit_exp.rollout.zoom.calls import ZoomCall

TOOL_TERMS = ("zoom_format", "zoom_iou", "tool_bonus", "turn_penalty")
RIGHT = "<think> look </think> <answer> tv </answer>"
WRONG = "<think> look </think> <answer> cat </answer>"


def crop(turn: int, box: tuple[int, int, int, int]) -> ZoomCall:
    return ZoomCall(turn=turn, trigger_text=f"<zoom>{list(box)}</zoom>", box=tuple(map(float, box)), crop_box=box)


def bad(turn: int, error: str = "malformed box") -> ZoomCall:
    return ZoomCall(turn=turn, trigger_text="<zoom>[1, 2]</zoom>", box=None, crop_box=None, error=error)


def load_reward(name: str):
    """conf/reward/<name>.yaml over the RewardConfig schema, its parent presets first (as Hydra composes it)."""
    raw = OmegaConf.load(REPO / "conf" / "reward" / f"{name}.yaml")
    merged = OmegaConf.structured(RewardConfig)
    for parent in [d for d in raw.pop("defaults") if d not in ("schema", "_self_")]:
        merged = OmegaConf.merge(merged, load_reward(parent))
    return OmegaConf.merge(merged, raw)


def preset(name: str, *dotlist: str):
    reward = load_reward(name)
    return OmegaConf.merge(reward, OmegaConf.from_dotlist(list(dotlist))) if dotlist else reward


def run(cfg, completions, calls, rows=None, max_turns=None):
    rows = rows or [make_row() for _ in completions]  # answer "tv", gold box [10, 20, 30, 40]
    ctx = RewardContext(prompts=["\nQuestion: What? suffix"] * len(completions), judge=ExactMatchJudge(),
                        zoom_calls=calls, zoom_max_turns=max_turns)
    return compute_rewards(cfg, completions, rows, ctx)


def test_tool_terms_score_zero_when_zoom_is_off():
    cfg = preset("grit_zoom")
    out = run(cfg, [RIGHT, WRONG], None, max_turns=None)
    for term in TOOL_TERMS:
        assert out.per_term[term] == [0.0, 0.0], term
    base = run(preset("grit_code"), [RIGHT, WRONG], None)
    assert out.total == base.total  # grit_zoom with zoom off is grit_code


def test_zoom_format_rules():
    calls = [[crop(1, (0, 0, 50, 50))], [crop(1, (0, 0, 50, 50)), bad(2)], [], [bad(1)]]
    texts = [RIGHT] * 4
    all_ok = run(preset("grit_zoom", "options.zoom_format.value=1.0"), texts, calls)
    assert all_ok.per_term["zoom_format"] == [1.0, 0.0, 0.0, 0.0]
    frac = run(preset("grit_zoom", "options.zoom_format.value=1.0", "options.zoom_format.rule=fraction_ok"), texts, calls)
    assert frac.per_term["zoom_format"] == [1.0, 0.5, 0.0, 0.0]


def test_zoom_iou_measures_and_rows_without_gold():
    gold = make_row(bboxs=[[10.0, 20.0, 30.0, 40.0]])  # area 400
    no_gold = make_row(bboxs=[])
    calls = [[crop(1, (10, 20, 30, 40))], [crop(1, (0, 0, 40, 60))], [crop(1, (0, 0, 40, 60)), crop(2, (100, 100, 120, 120))],
             [bad(1)], [crop(1, (10, 20, 30, 40))]]
    rows = [gold, gold, gold, gold, no_gold]
    texts = [RIGHT] * 5
    iou = run(preset("grit_zoom", "options.zoom_iou.value=1.0", "options.zoom_iou.measure=iou"), texts, calls, rows)
    assert iou.per_term["zoom_iou"] == pytest.approx([1.0, 400 / 2400, 400 / 2800, 0.0, 0.0])
    cover = run(preset("grit_zoom", "options.zoom_iou.value=1.0"), texts, calls, rows)
    assert cover.per_term["zoom_iou"] == pytest.approx([1.0, 1.0, 1.0, 0.0, 0.0])
    last = run(preset("grit_zoom", "options.zoom_iou.value=1.0", "options.zoom_iou.crops=last"), texts, calls, rows)
    assert last.per_term["zoom_iou"] == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.0])
    assert gold_coverage([[10, 20, 20, 40]], [[10, 20, 30, 40]]) == pytest.approx(0.5)


def test_tool_bonus_only_when_the_answer_is_right_and_a_crop_came_back():
    texts = [RIGHT, WRONG, RIGHT, RIGHT]
    calls = [[crop(1, (0, 0, 50, 50))], [crop(1, (0, 0, 50, 50))], [], [bad(1)]]
    out = run(preset("deepeyes"), texts, calls)
    assert out.per_term["tool_bonus"] == [1.0, 0.0, 0.0, 0.0]
    half = make_row(answer="tv")  # the test judge gives 0.5 when the reference is contained: not > 0.5
    out = run(preset("deepeyes"), ["<answer> a tv </answer>"], [[crop(1, (0, 0, 9, 9))]], [half])
    assert out.per_term["tool_bonus"] == [0.0]


def test_turn_penalty_counts_calls_past_max_turns():
    calls = [[crop(1, (0, 0, 9, 9)), crop(2, (0, 0, 9, 9))], [crop(1, (0, 0, 9, 9)), crop(2, (0, 0, 9, 9)),
             bad(3, "past max_turns"), bad(4, "past max_turns")], []]
    out = run(preset("grit_zoom"), [RIGHT] * 3, calls, max_turns=2)
    assert out.per_term["turn_penalty"] == [0.0, -1.0, 0.0]
    once = run(preset("grit_zoom", "options.turn_penalty.per_call=false"), [RIGHT] * 3, calls, max_turns=2)
    assert once.per_term["turn_penalty"] == [0.0, -0.5, 0.0]


@pytest.mark.parametrize("text, error", [
    ("<think> a </think> <answer> tv </answer>", False),
    ("<think> a <answer> tv </answer>", True),  # unbalanced think
    ("<think> a </think> <answer> tv", True),  # unbalanced answer after </think>
    ("<answer> x </answer> <think> a </think> <answer> tv </answer>", False),  # only after the last </think>
    ("no tags at all", False),
    ("<answer> " + "x" * 1000 + " </answer>", True),  # an over-long answer
])
def test_deepeyes_format_error(text, error):
    assert deepeyes_format_error(text, 1000) is error


def test_deepeyes_preset_is_its_formula():
    """0.8 acc + 0.2 format + 1.2 tool, acc on the LAST <answer>, as vl_agent.compute_score."""
    texts = [
        "<think> a </think> <answer> cat </answer> <answer> tv </answer>",  # last answer right, zoomed
        "<think> a </think> <answer> tv </answer>",  # right, no zoom
        "<think> a <answer> tv </answer>",  # format error, right, zoomed
        "<think> a </think> <answer> cat </answer>",  # wrong, zoomed
        "<answer> " + "tv " * 400 + "</answer>",  # over-long: acc 0, format error
    ]
    calls = [[crop(1, (0, 0, 9, 9))], [], [crop(1, (0, 0, 9, 9))], [crop(1, (0, 0, 9, 9))], [crop(1, (0, 0, 9, 9))]]
    out = run(preset("deepeyes"), texts, calls)
    acc, fmt, tool = [1, 1, 1, 0, 0], [0, 0, -1, 0, -1], [1, 0, 1, 0, 0]
    assert out.total == pytest.approx([0.8 * a + 0.2 * f + 1.2 * t for a, f, t in zip(acc, fmt, tool, strict=True)])


def test_tool_bonus_needs_judge_accuracy_and_calls_must_align():
    cfg = OmegaConf.merge(preset("deepeyes"), {"weights": {"judge_accuracy": 0.0}})
    check_reward_config(cfg)  # weight 0 is enough: the verdicts are computed
    without = OmegaConf.create({"name": "x", "weights": {"tool_bonus": 1.0}, "options": {}})
    with pytest.raises(RewardOptionError, match="reward.weights.tool_bonus reads the verdicts of reward term 'judge_accuracy'"):
        check_reward_config(without)
    with pytest.raises(RewardOptionError, match="reward.options.zoom_iou.measure='area' is not valid"):
        check_reward_config(preset("grit_zoom", "options.zoom_iou.measure=area"))
    with pytest.raises(ValueError, match="zoom_calls has 1 entries for 2 completions"):
        run(preset("deepeyes"), [RIGHT, RIGHT], [[]])
