"""Table 1 layout from fixture run directories: values, paper numbers, deltas (worked out by hand), MME."""

from __future__ import annotations

import csv
import io
import re

import pytest

from grit_exp.reporting import (
    PAPER_TABLE1,
    ReportError,
    build_table1,
    collect_results,
    render_csv,
    render_latex,
    render_markdown,
)
from grit_exp.reporting.table1 import mme_acc
from tests.helpers.run_dirs import make_evaluate_run, make_training_run, write_config, write_metrics


def md_table(text: str) -> list[list[str]]:
    """The table lines of a Markdown rendering, split into cells; every line must have the header's width."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    assert all(len(r) == len(rows[0]) for r in rows), "ragged Markdown table"
    assert set(lines[1].replace("|", "")) == {"-"}
    return [rows[0]] + rows[2:]


def test_paper_numbers_are_the_published_ones():
    assert len(PAPER_TABLE1) == 10
    qwen_grit = PAPER_TABLE1[("qwen2_5_vl_3b", "grit")]
    assert (qwen_grit["vsr_acc"].value, qwen_grit["vsr_giou"].text) == (72.9, "0.325")
    assert qwen_grit["mme_acc"].value == 89.3 and qwen_grit["ovd_giou"].value == 0.398
    internvl_sft = PAPER_TABLE1[("internvl3_2b", "sft")]
    assert (internvl_sft["gqa_acc"].value, internvl_sft["gqa_giou"].value, internvl_sft["ovd_giou"].text) == (46.8, 0.114, "0.078")
    assert PAPER_TABLE1[("qwen2_5_vl_3b", "direct")]["vsr_giou"].text == "0.00"  # published spelling kept
    assert PAPER_TABLE1[("internvl3_2b", "icl1")]["mme_acc"].value == 1.3


def test_values_and_deltas_hand_computed(tmp_path):
    make_evaluate_run(tmp_path / "run", table1={"model": "qwen2_5_vl_3b", "method": "grit"})
    (row,) = build_table1(collect_results([tmp_path]))
    v = row.values
    # ours: ACC x100, GIoU = giou_paper
    assert v["vsr_acc"] == pytest.approx(75.0) and v["vsr_giou"] == pytest.approx(0.300)
    assert v["tallyqa_acc"] == pytest.approx(50.0) and v["tallyqa_giou"] == pytest.approx(0.4)
    assert v["gqa_acc"] is None and v["gqa_giou"] is None  # not evaluated: blank
    assert v["mathvista_acc"] == pytest.approx(60.0)
    assert v["mme_acc"] == pytest.approx(85.0)  # (90 + 80 + 100 + 70) / 4
    assert v["ovd_giou"] == pytest.approx(0.41)
    # paper: 72.9 / 0.325, 47.8 / 0.447, 59.8, 89.3, 0.398
    assert row.delta("vsr_acc") == pytest.approx(2.1)
    assert row.delta("vsr_giou") == pytest.approx(-0.025)
    assert row.delta("tallyqa_acc") == pytest.approx(2.2)
    assert row.delta("tallyqa_giou") == pytest.approx(-0.047)
    assert row.delta("mathvista_acc") == pytest.approx(0.2)
    assert row.delta("mme_acc") == pytest.approx(-4.3)
    assert row.delta("ovd_giou") == pytest.approx(0.012)
    assert row.delta("gqa_acc") is None
    assert any("tallyqa 2" in n for n in row.notes)  # judge failures are reported


def test_exact_giou_option_uses_the_rescaled_numbers(tmp_path):
    make_evaluate_run(tmp_path / "run")
    (row,) = build_table1(collect_results([tmp_path]), giou="exact")
    assert row.values["vsr_giou"] == pytest.approx(0.31) and row.values["ovd_giou"] == pytest.approx(0.45)
    with pytest.raises(ValueError, match="giou='boxes' is not valid"):
        build_table1([], giou="boxes")


def test_mme_subsets_are_averaged_unweighted():
    datasets = {"mme_count": {"n": 60, "acc": 0.9}, "mme_color": {"n": 30, "acc": 0.6}, "vsr": {"n": 5, "acc": 0.0}}
    value, used = mme_acc(datasets)
    assert value == pytest.approx(75.0)  # (0.9 + 0.6) / 2, not the pooled (54 + 18) / 90 = 0.8
    assert used == ["mme_color", "mme_count"]


def test_incomplete_mme_is_noted_and_missing_subset_acc_skipped(tmp_path):
    make_evaluate_run(tmp_path / "run", datasets={"mme_count": {"n": 4, "acc": 0.5}, "mme_color": {"n": 4, "acc": None},
                                                   "vsr": {"n": 0, "acc": None}})
    (row,) = build_table1(collect_results([tmp_path]))
    assert row.values["mme_acc"] == pytest.approx(50.0)
    assert row.values["vsr_acc"] is None
    assert any("MME ACC averaged over 1 subset(s): mme_count" in n for n in row.notes)


def test_row_method_from_prompt_when_no_table1_key(tmp_path):
    make_evaluate_run(tmp_path / "a", model="internvl3_2b", family="internvl", prompt="icl1")
    (row,) = build_table1(collect_results([tmp_path]))
    assert (row.result.model, row.result.method) == ("internvl3_2b", "icl1")
    assert row.paper is PAPER_TABLE1[("internvl3_2b", "icl1")]


def test_multirun_layout_order_and_markdown(tmp_path):
    sweep = tmp_path / "multirun" / "2025-01-01" / "10-00-00"
    (sweep).mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    make_evaluate_run(sweep / "0", model="internvl3_2b", family="internvl", prompt="cot", judge_kind="rules")
    make_evaluate_run(sweep / "1", model="qwen2_5_vl_3b", prompt="grit", model_path="yfan1997/GRIT-20-Qwen2.5-VL-3B")
    make_evaluate_run(sweep / "2", model="qwen2_5_vl_3b", prompt="direct")
    make_evaluate_run(sweep / "3", model="tiny_qwen2_5_vl", prompt="grit")  # base model + GRIT prompt: CoT, no paper row
    rows = build_table1(collect_results([tmp_path / "multirun"]))
    assert [(r.result.model, r.result.method) for r in rows] == [
        ("qwen2_5_vl_3b", "direct"), ("qwen2_5_vl_3b", "grit"), ("internvl3_2b", "cot"), ("tiny_qwen2_5_vl", "cot")]
    table = md_table(render_markdown(rows))
    header, body = table[0], table[1:]
    assert header[:3] == ["model", "method", "row"] and header[-2:] == ["judge", "run"]
    assert header[3:9] == ["VSR ACC / GIoU", "TallyQA ACC / GIoU", "GQA ACC / GIoU", "MathVista ACC", "MME ACC",
                           "OVDEval GIoU"]
    assert [r[2] for r in body] == ["ours", "paper", "Δ"] * 3 + ["ours"]
    qwen_grit_ours, qwen_grit_paper, qwen_grit_delta = body[3:6]
    assert qwen_grit_ours[3] == "75.0 / 0.300 (n=10)†" and qwen_grit_ours[5] == ""  # GQA blank
    assert qwen_grit_ours[7] == "85.0 (n=16)†"  # MME: n summed over its four subsets
    assert qwen_grit_paper[3] == "72.9 / 0.325" and qwen_grit_paper[7] == "89.3"
    assert qwen_grit_delta[3] == "+2.1 / -0.025" and qwen_grit_delta[7] == "-4.3" and qwen_grit_delta[8] == "+0.012"
    assert body[6][-2] == "rules" and body[3][-2] == "openai:gpt-4o"  # how each row was judged
    assert body[6][-1] == "10-00-00/0"


def test_no_paper_leaves_out_paper_rows_and_columns(tmp_path):
    make_evaluate_run(tmp_path / "run")
    rows = build_table1(collect_results([tmp_path]))
    table = md_table(render_markdown(rows, paper=False))
    assert [r[2] for r in table[1:]] == ["ours"]
    header = next(csv.reader(io.StringIO(render_csv(rows, paper=False))))
    assert "vsr_acc" in header and not any(h.endswith(("_paper", "_delta")) for h in header)


def test_csv_parses_with_full_precision_and_deltas(tmp_path):
    make_evaluate_run(tmp_path / "run", model_path="yfan1997/GRIT-20-Qwen2.5-VL-3B")
    rows = build_table1(collect_results([tmp_path]))
    (line,) = list(csv.DictReader(io.StringIO(render_csv(rows))))
    assert (line["vsr_n"], line["mme_n"], line["gqa_n"]) == ("10", "16", "")
    assert float(line["vsr_acc"]) == pytest.approx(75.0) and line["vsr_acc_paper"] == "72.9"
    assert float(line["vsr_acc_delta"]) == pytest.approx(2.1)
    assert float(line["mme_acc_delta"]) == pytest.approx(-4.3)
    assert line["gqa_acc"] == "" and line["gqa_acc_delta"] == ""
    assert line["judge"] == "openai:gpt-4o" and line["method"] == "grit" and line["kind"] == "evaluate"


def test_latex_is_well_formed(tmp_path):
    make_evaluate_run(tmp_path / "a", model="internvl3_2b", family="internvl", prompt="sft",
                      table1={"model": "internvl3_2b", "method": "sft"})
    make_evaluate_run(tmp_path / "b", model="my_model", prompt="grit_paper_reward")
    tex = render_latex(build_table1(collect_results([tmp_path])))
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    spec = re.search(r"\\begin\{tabular\}\{(\w+)\}", tex).group(1)
    body = [line for line in tex.splitlines() if line.endswith(r"\\")]
    assert len(body) == 1 + 3 + 1  # header, ours/paper/delta of the SFT row, ours of the custom row
    for line in body:
        assert line.count("&") - line.count(r"\&") == len(spec) - 1
    assert r"grit\_paper\_reward" in tex and "my\\_model" in tex and r"$\Delta$" in tex
    assert tex.count("{") - tex.count(r"\{") == tex.count("}") - tex.count(r"\}")


def test_training_run_keeps_last_step_unless_all_steps(tmp_path):
    make_training_run(tmp_path / "train", steps=(3, 6))
    (last,) = collect_results([tmp_path])
    assert (last.kind, last.step, last.datasets["vsr"]["acc"]) == ("train_eval", 6, 0.6)
    every = collect_results([tmp_path], all_steps=True)
    assert [r.step for r in every] == [3, 6]
    assert every[0].label.endswith("@3")


def test_quick_eval_from_metrics_jsonl_when_no_metrics_json(tmp_path):
    run = tmp_path / "demo"
    make_training_run(run, steps=(3, 6))
    for step in (3, 6):
        (run / "eval" / f"step_{step}" / "metrics.json").unlink()
    (result,) = collect_results([tmp_path])
    assert result.kind == "quick_eval" and result.step == 6
    assert result.datasets["vsr"]["acc"] == pytest.approx(0.1 + 0.0)
    assert result.judge == "openai:gpt-4o (quick eval)"
    (row,) = build_table1([result], giou="exact")
    assert any("quick evaluation" in n for n in row.notes)


def test_missing_config_names_the_directory(tmp_path):
    orphan = tmp_path / "copied_results"
    write_metrics(orphan, {"vsr": {"n": 1, "acc": 1.0}})
    with pytest.raises(ReportError, match=re.escape(str(orphan)) + r": no saved config .*\.hydra/config\.yaml"):
        collect_results([tmp_path])
    assert collect_results([tmp_path], skip_incomplete=True) == []


def test_eval_step_without_run_config_names_both_places(tmp_path):
    step = tmp_path / "run" / "eval" / "step_5"
    write_metrics(step, {"vsr": {"n": 1, "acc": 1.0}})
    with pytest.raises(ReportError, match=r"step_5/\.hydra/config\.yaml is missing|step_5/.hydra/config.yaml or"):
        collect_results([tmp_path])


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ReportError, match="no such file or directory"):
        collect_results([tmp_path / "nope"])
    with pytest.raises(ReportError, match="no evaluation results under"):
        collect_results([tmp_path])
    write_config(tmp_path / "bad")
    (tmp_path / "bad" / "metrics.json").write_text('{"vsr": 3}')
    with pytest.raises(ReportError, match="entry 'vsr' should be an object"):
        collect_results([tmp_path])
