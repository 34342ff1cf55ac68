"""Reward terms one by one: options, per-row counting, the judge contract, presets and overrides."""

from __future__ import annotations

import subprocess
import sys

import pytest
from grit_reward_testkit import ExactMatchJudge, load_preset, make_row, word_token_ids
from omegaconf import OmegaConf

from grit_exp.rewards import (
    REWARD_TERMS,
    RewardContext,
    RewardOptionError,
    check_reward_config,
    compute_rewards,
)
from grit_exp.rewards.format_terms import ground_truth_count

GOOD = "<think> [1, 2, 3, 4] [5, 6, 7, 8] </think> <rethink> two </rethink> <answer> 2 </answer>"


def ctx_for(completions, judge=None, **kw):
    return RewardContext(
        prompts=["\nQuestion: How many? suffix"] * len(completions),
        token_ids=[word_token_ids(c) for c in completions],
        judge=judge if judge is not None else ExactMatchJudge(),
        **kw,
    )


def test_registry_alone_is_complete_and_light():
    code = (
        "import sys, grit_exp.rewards.registry as r; print(sorted(r.REWARD_TERMS)); "
        "print('torch' in sys.modules, 'grit_exp.judge.base' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == str(sorted(REWARD_TERMS))
    assert set(REWARD_TERMS) >= {
        "format",
        "count",
        "judge_accuracy",
        "bleu1",
        "answer_format",
        "repetition",
        "box_format",
        "think_format",
    }
    assert out[1] == "False False"


@pytest.mark.parametrize("preset", ["grit_code", "grit_paper"])
def test_presets_validate_and_contain_count(preset):
    cfg = load_preset(preset)
    check_reward_config(cfg)
    assert "count" in cfg.weights
    assert cfg.name == preset


def test_unknown_option_names_the_key():
    with pytest.raises(
        RewardOptionError,
        match=r"reward\.options\.count\.valu\b.*valid options: parser, require_rethink, value",
    ):
        REWARD_TERMS["count"]([GOOD], [make_row("tallyqa", "2")], ctx_for([GOOD]), valu=1.0)


def test_wrong_type_and_bad_choice_name_the_key():
    with pytest.raises(RewardOptionError, match=r"reward\.options\.judge_accuracy\.binarize='yes'"):
        REWARD_TERMS["judge_accuracy"]([GOOD], [make_row()], ctx_for([GOOD]), binarize="yes")
    with pytest.raises(
        RewardOptionError, match=r"reward\.options\.box_format\.parser='regex'.*'paper', 'structured'"
    ):
        REWARD_TERMS["box_format"]([GOOD], [make_row()], ctx_for([GOOD]), parser="regex")


def test_config_errors():
    cfg = load_preset("grit_code")
    bad = OmegaConf.merge(cfg, {"options": {"count": {"nope": 1}}})
    with pytest.raises(RewardOptionError, match=r"reward\.options\.count\.nope"):
        check_reward_config(bad)
    with pytest.raises(RewardOptionError, match="reward.weights.cont: unknown reward term"):
        check_reward_config(OmegaConf.create({"weights": {"cont": 1.0}, "options": {}}))
    orphan = OmegaConf.create({"weights": {"count": 1.0}, "options": {"bleu1": {"scale": 1.0}}})
    with pytest.raises(RewardOptionError, match=r"reward\.options\.bleu1 is set but 'bleu1' has no weight"):
        check_reward_config(orphan)


def test_count_is_decided_per_row_not_per_batch():
    # the released code read the dataset of the first row of the batch: here the first row is VSR
    completions = [GOOD, GOOD, GOOD]
    rows = [make_row("vsr", "2"), make_row("tallyqa", "2"), make_row("synth_count", "3")]
    assert REWARD_TERMS["count"](completions, rows, ctx_for(completions)) == [0.0, 1.0, 0.0]
    ctx = ctx_for(completions, counting_datasets=["vsr"])
    assert REWARD_TERMS["count"](completions, rows, ctx) == [1.0, 0.0, 0.0]


def test_config_counting_datasets_override_context():
    cfg = OmegaConf.merge(load_preset("grit_code"), {"counting_datasets": ["vsr"]})
    rows = [make_row("vsr", "2"), make_row("tallyqa", "2")]
    out = compute_rewards(cfg, [GOOD, GOOD], rows, ctx_for([GOOD, GOOD]))
    assert out.per_term["count"] == [1.0, 0.0]


def test_counting_row_with_non_integer_answer_raises_with_source():
    with pytest.raises(ValueError, match=r"test\.jsonl:1.*'three'.*reward\.counting_datasets"):
        REWARD_TERMS["count"]([GOOD], [make_row("tallyqa", "three")], ctx_for([GOOD]))
    assert ground_truth_count(make_row("tallyqa", " 3\n")) == 3
    assert ground_truth_count(make_row("tallyqa", "9" * 5000)) is None  # beyond int()'s digit limit


def test_count_weight_sweep_and_option_override():
    base = load_preset("grit_code")
    rows = [make_row("tallyqa", "2")]
    totals = []
    for weight in (0, 0.5, 1):
        cfg = OmegaConf.merge(base, OmegaConf.from_dotlist([f"weights.count={weight}"]))
        out = compute_rewards(cfg, [GOOD], rows, ctx_for([GOOD]))
        assert out.per_term["count"] == [1.0]  # weight-0 terms are still computed and logged
        totals.append(out.total[0])
    assert totals[1] - totals[0] == pytest.approx(0.5) and totals[2] - totals[0] == pytest.approx(1.0)
    paper = OmegaConf.merge(load_preset("grit_paper"), OmegaConf.from_dotlist(["weights.count=0"]))
    assert compute_rewards(paper, [GOOD], rows, ctx_for([GOOD])).per_term["count"] == [0.5]


def test_binarize_option_and_raw_judge_scores():
    completions = ["<answer> a tv </answer>", "<answer> tv </answer>", "no answer"]
    rows = [make_row(), make_row(), make_row()]
    raw = OmegaConf.merge(
        load_preset("grit_code"), OmegaConf.from_dotlist(["options.judge_accuracy.binarize=false"])
    )
    out = compute_rewards(raw, completions, rows, ctx_for(completions))
    assert out.per_term["judge_accuracy"] == [0.5, 1.0, 0.0]
    assert out.judge_scores == [0.5, 1.0, None]
    assert out.judge_cached == 1  # the test judge marks its 0.5 answers as cached
    binary = compute_rewards(load_preset("grit_code"), completions, rows, ctx_for(completions))
    assert binary.per_term["judge_accuracy"] == [1.0, 1.0, 0.0]
    assert binary.judge_scores == [0.5, 1.0, None]


def test_judge_called_once_with_full_prompt_or_row_question():
    completions = ["<answer> tv </answer>", "nothing", "<answer> x"]
    rows = [make_row(question="Q1"), make_row(question="Q2"), make_row(question="Q3")]
    judge = ExactMatchJudge()
    ctx = RewardContext(prompts=["P1", "P2", "P3"], judge=judge)
    compute_rewards(load_preset("grit_paper"), completions, rows, ctx)
    assert len(judge.calls) == 1
    assert [(r.question, r.prediction, r.reference) for r in judge.calls[0]] == [
        ("P1", " tv ", "tv"),
        ("P3", " x", "tv"),
    ]
    judge = ExactMatchJudge()
    cfg = OmegaConf.merge(
        load_preset("grit_paper"), OmegaConf.from_dotlist(["options.judge_accuracy.question=row"])
    )
    compute_rewards(cfg, completions, rows, RewardContext(judge=judge))
    assert [r.question for r in judge.calls[0]] == ["Q1", "Q3"]


def test_judge_not_called_without_answers_and_required_when_needed():
    judge = ExactMatchJudge()
    out = compute_rewards(
        load_preset("grit_code"), ["no tags"], [make_row()], ctx_for(["no tags"], judge=judge)
    )
    assert judge.calls == [] and out.judge_requests == 0
    with pytest.raises(ValueError, match="RewardContext.judge is None"):
        compute_rewards(load_preset("grit_code"), [GOOD], [make_row()], RewardContext(prompts=["p"]))
    with pytest.raises(ValueError, match="needs RewardContext.prompts"):
        compute_rewards(load_preset("grit_code"), [GOOD], [make_row()], RewardContext(judge=judge))


def test_judge_term_alone_asks_the_judge_itself():
    judge = ExactMatchJudge()
    ctx = RewardContext(prompts=["p", "p"], judge=judge)
    values = REWARD_TERMS["judge_accuracy"](["<answer>tv", "<answer>FAIL"], [make_row(), make_row()], ctx)
    assert values == [1.0, 0.0] and len(judge.calls) == 1


def test_per_dataset_means_and_batch_means():
    completions = [GOOD, "", GOOD]
    rows = [make_row("tallyqa", "2"), make_row("vsr"), make_row("vsr", "2")]
    out = compute_rewards(load_preset("grit_code"), completions, rows, ctx_for(completions))
    assert set(out.per_dataset) == {"tallyqa", "vsr"}
    assert out.per_dataset["tallyqa"]["count"] == 1.0
    assert out.per_dataset["vsr"]["box_format"] == pytest.approx(0.25)
    assert out.per_dataset["vsr"]["total"] == pytest.approx((out.total[1] + out.total[2]) / 2)
    assert out.means()["total"] == pytest.approx(sum(out.total) / 3)


def test_repetition_without_token_ids():
    text = "x y z w v u t s x y z w v u t s"
    ctx = RewardContext(token_ids=None)
    assert REWARD_TERMS["repetition"]([text], [make_row()], ctx) == [pytest.approx(7 / 8 * 0.5)]  # words only
    with pytest.raises(ValueError, match="needs RewardContext.token_ids"):
        REWARD_TERMS["repetition"]([text], [make_row()], ctx, without_token_ids="raise")


def test_repetition_token_truncation_and_quirk_options():
    text = " ".join(f"w{i}" for i in range(20))  # no repeated words
    ids = [7] * 20  # all token windows repeat
    ctx = RewardContext(token_ids=[ids])
    # word score 1, token score 0 (5 windows, all repeat): (0 - (1 - 1)) x 0.5
    assert REWARD_TERMS["repetition"]([text], [make_row()], ctx) == [0.0]
    ctx = RewardContext(token_ids=[[1] * 10 + [151643] + [7] * 9])  # truncated to 10 ids < 16 -> full value
    assert REWARD_TERMS["repetition"]([text], [make_row()], ctx) == [0.5]
    periodic = " ".join(["a b c d e f g h"] * 2)  # 16 words, one full repeat
    full_pairs = REWARD_TERMS["repetition"](
        [periodic], [make_row()], RewardContext(token_ids=[list(range(16))]), count_partial_word_pairs=False
    )
    assert full_pairs == [(1.0 - (1 - 0.0)) * 0.5]  # 1 full word pair, repeated -> word score 0


def test_think_format_search_from_first():
    stray = "<think> a b </think> <rethink> c </rethink> <think> <answer> tv </answer>"
    fn = REWARD_TERMS["think_format"]
    assert fn([stray], [make_row()], RewardContext()) == [pytest.approx(0.1)]
    assert fn([stray], [make_row()], RewardContext(), search_from="first") == [pytest.approx(0.5)]
    assert fn(
        ["<think>a\nb</think><rethink></rethink>"], [make_row()], RewardContext(), word_split="whitespace"
    ) == [pytest.approx(0.5)]


def test_structured_parser_option_counts_decimal_boxes():
    text = "<think> [1.5, 2.5, 3.5, 4.5] (0.5, 0.5, 1, 1) </think><rethink> r </rethink>"
    rows = [make_row("tallyqa", "2")]
    assert REWARD_TERMS["box_format"]([text], rows, RewardContext()) == [0.0]
    assert REWARD_TERMS["box_format"]([text], rows, RewardContext(), parser="structured") == [0.5]
    assert REWARD_TERMS["count"]([text], rows, RewardContext(), parser="structured") == [1.0]


def test_bleu_options():
    fn = REWARD_TERMS["bleu1"]
    assert fn(["<answer> tv </answer>"], [make_row()], RewardContext()) == [pytest.approx(0.05)]
    assert fn(["<answer> tv </answer>"], [make_row()], RewardContext(), stop_at_answer_close=True) == [
        pytest.approx(0.1)
    ]
    assert fn(["<answer> tv </answer>"], [make_row()], RewardContext(), scale=1.0) == [pytest.approx(0.5)]


def test_length_mismatches_raise():
    with pytest.raises(ValueError, match="2 completions but 1 rows"):
        compute_rewards(load_preset("grit_code"), [GOOD, GOOD], [make_row()], ctx_for([GOOD, GOOD]))
    with pytest.raises(ValueError, match="token_ids has 1 entries for 2 completions"):
        ctx = RewardContext(prompts=["p", "p"], token_ids=[[1]], judge=ExactMatchJudge())
        compute_rewards(load_preset("grit_code"), [GOOD, GOOD], [make_row(), make_row()], ctx)
