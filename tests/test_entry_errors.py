"""Bad input to an entry point: one line on stderr (naming the key or file, plus the run's log), exit
code 2, the same line in the log; unexpected exceptions keep their traceback. Real subprocesses.

Before the fix: `evaluate model.dtype=fp16` ended in a bare KeyError traceback, data errors in a
20-40 line traceback with exit code 1, an empty replay file gave metrics of nothing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": ""}
    env.pop("HYDRA_FULL_ERROR")
    return subprocess.run([sys.executable, "-m", f"grit_exp.{module}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def user_error_line(proc: subprocess.CompletedProcess) -> str:
    """The one stderr line of a user error (progress bars and library warnings aside)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "real_accelerator" not in line]
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("module", ["train", "evaluate", "infer"])
def test_an_enumerated_value_fails_before_anything_runs(module, tmp_path) -> None:
    args = ["model.dtype=fp16", f"hydra.run.dir={tmp_path / 'run'}"]
    if module == "infer":
        args += ["--image", str(tmp_path / "x.png"), "--question", "q"]
    line = user_error_line(run(module, *args, cwd=tmp_path))
    assert line == (f"grit_exp.{module}: error: model.dtype='fp16' is not valid; choose one of "
                    "'float32', 'bfloat16', 'float16'")
    assert not (tmp_path / "run").exists()  # refused before Hydra made the run directory


def test_cfg_job_checks_enumerated_values_too(tmp_path) -> None:
    line = user_error_line(run("evaluate", "--cfg", "job", "rollout.kind=vllm", cwd=tmp_path))
    assert "rollout.kind='vllm' is not valid; choose one of 'hf', 'replay'" in line


def test_a_misspelled_key_is_one_line(tmp_path) -> None:
    line = user_error_line(run("train", "trainer.max_stpes=3", cwd=tmp_path))
    assert "the config does not compose: Could not override 'trainer.max_stpes'" in line


def test_a_data_error_in_the_run_names_the_file_and_the_log(tmp_path) -> None:
    missing = tmp_path / "nope.jsonl"
    proc = run("evaluate", "rollout=replay", f"rollout.path={missing}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    line = user_error_line(proc)
    match = re.fullmatch(r"grit_exp\.evaluate: error: (.*)  \(log: (.*)\)", line)
    assert match, line
    assert match.group(1) == f"rollout.path={str(missing)!r}: no such replay file"
    log_file = Path(match.group(2))
    assert log_file == tmp_path / "run" / "evaluate.log"
    assert match.group(1) in log_file.read_text()


def _replay_line(image: str, completion: str = "<answer> 2 </answer>") -> str:
    return json.dumps({"question": "How many?", "answer": "2", "image": image, "width": 64, "height": 48,
                       "bboxs": [[1, 1, 10, 10]], "dataset": "synth_count", "completion": completion})


def test_an_empty_replay_file_exits_with_a_message(tmp_path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    line = user_error_line(run("evaluate", "rollout=replay", f"rollout.path={empty}",
                               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path))
    assert "nothing to replay, it has no lines" in line
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_replay_file_whose_rows_were_all_skipped_exits_with_a_message(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_replay_line("a.png").replace('"completion"', '"completon"') + "\n" + "not json\n")
    line = user_error_line(run("evaluate", "rollout=replay", f"rollout.path={bad}", "rollout.on_error=skip",
                               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path))
    assert "nothing to replay, all 2 line(s) were skipped" in line
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_an_unexpected_exception_keeps_its_traceback(tmp_path) -> None:
    not_an_image = tmp_path / "photo.png"
    not_an_image.write_text("this is text, not a PNG")
    proc = run("infer", "--image", str(not_an_image), "--question", "What is it?", f"hydra.run.dir={tmp_path / 'run'}",
               cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "UnidentifiedImageError" in proc.stderr


def test_a_missing_image_is_one_line(tmp_path) -> None:
    line = user_error_line(run("infer", "--image", str(tmp_path / "nope.png"), "--question", "Why?",
                               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path))
    assert line.startswith(f"grit_exp.infer: error: image='{tmp_path / 'nope.png'}': no such file  (log: ")


def test_report_on_a_folder_without_results_is_one_line(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "grit_exp.report", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr


def test_random_weights_are_announced_and_any_question_works(tiny_model_paths, tmp_path) -> None:
    image = tmp_path / "img.png"
    Image.new("RGB", (64, 48), (20, 200, 40)).save(image)
    question = "What's left of the cup, [a] or (b)? Say \"yes\", 'no', a=b, {c}, ${oc.env:HOME} \\ done"
    proc = run("infer", "--image", str(image), "--question", question, "rollout.max_new_tokens=4",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "is randomly initialised" in proc.stdout + proc.stderr
    record = json.loads((tmp_path / "run" / "inference.json").read_text())
    assert record["question"] == question and record["randomly_initialised"] is True
    assert question in record["user_text"]


def test_validation_runs_once_a_single_run_in_preflight_each_sweep_job_in_the_task(monkeypatch) -> None:
    from grit_exp import preflight, train
    from grit_exp.hydra_app import CONF_DIR

    monkeypatch.setattr(preflight, "_validated_before_hydra", False)
    checked = []
    preflight.preflight(train.main, "train", str(CONF_DIR), checked.append, argv=["seed=3"])
    assert len(checked) == 1 and preflight.validated_before_hydra()  # the task function skips its own check
    monkeypatch.setattr(preflight, "_validated_before_hydra", False)
    checked.clear()
    preflight.preflight(train.main, "train", str(CONF_DIR), checked.append, argv=["-m", "seed=1,2"])
    assert [cfg.seed for cfg in checked] == [1, 2] and not preflight.validated_before_hydra()


def test_each_job_of_a_sweep_validates_its_own_config(tmp_path) -> None:
    proc = run("train", "-m", "algorithm.num_generations=1", "trainer.keep_last=1,2",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert "2 of 2 sweep jobs failed" in proc.stdout + proc.stderr, proc.stderr[-3000:]
    for job in ("0", "1"):
        assert "algorithm.num_generations=1 must be >= 2" in (tmp_path / "sweep" / job / "train.log").read_text()
