"""The layout change (issue #16) moved code without changing what a run writes: the same short runs by the
code of the commit before it and by this checkout give identical outputs, on the same machine.

Four runs each: a fixed-seed training run of the default config (warm start, GRPO steps, evaluation with
sampled reward, checkpoint), the same run on 2 processes under DeepSpeed ZeRO-2, an evaluation of the
trained checkpoint, and a replay of recorded completions. Compared exactly: every metrics.jsonl line (the
`time/` keys left out), every eval metrics.json (timings left out), every samples.jsonl, the sampled
prompts and the checkpoint's tensors. The reference code comes from `git archive` of REFERENCE_COMMIT
(a full clone is needed: the test fails, never skips, without it) and runs from its own tree with the
same virtual environment; each side has its own cache, so no cached warm start or model is shared.

A later change that alters outputs on purpose moves REFERENCE_COMMIT to its own parent and says so in
its commit message; keys the reference wrote must all be there and equal, keys a change adds are allowed.

History: the layout change (#16) was checked against f2c5dfe (main before it): with the one deliberate
change of that session's #18 work reverted (ef39b38: log-probs always in two forward passes), all four
scenarios were identical, weights included. The reference then moved past the deliberate changes of #17
(answers without <answer> score 0 unless the prompt asks for the whole response: fewer judge calls) and
#18 (two forward passes, chunked log-probs, fp32 warm start), to a27a542; then past the fused AdamW of
#18 (last-bit differences from the first optimizer step on), to e7161cc; then past the demo's new
training values of #19 (T 0.7, cosine lr: the default config's scenarios use them), to the commit named below.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_COMMIT = "aba988d55161dc12a596c099ef24e54a9c9180bb"  # the demo's T 0.7 / cosine / 100 steps (#19, 2026-12-08); see the docstring

pytestmark = pytest.mark.slow

TRAIN = [
    "seed=3", "trainer.max_steps=2", "trainer.warm_start_sft_steps=10", "trainer.prompts_per_step=4",
    "algorithm.num_generations=4", "trainer.micro_batch_size=4", "trainer.eval_every=2", "trainer.save_every=2",
    "dataset.eval_num_samples=6", "dataset.synthetic.num_train=64",
]
# keys whose values are wall-clock times, paths of the run, or dates: they differ between any two runs
VOLATILE = ("time/", "_s", "seconds", "started", "finished", "path", "dir", "host", "timestamp", "elapsed")


def _volatile(key: str) -> bool:
    return any(part in key for part in VOLATILE)


@pytest.fixture(scope="module")
def reference_src(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("reference_tree")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", REFERENCE_COMMIT, "src", "conf", "launchers", "pyproject.toml"],
                             capture_output=True)
    if archive.returncode != 0:
        pytest.fail(f"this test compares with commit {REFERENCE_COMMIT}, which this clone lacks (a shallow clone?): "
                    f"{archive.stderr.decode().strip()}; clone the whole history")
    tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tree, filter="data")
    return tree


def _run(tree: Path | None, cache: Path, entry: str, args: list[str], processes: int = 1) -> None:
    """`python -m grit_exp.<entry>` from `tree`'s code (None: this checkout)."""
    env = {**os.environ, "GRIT_EXP_CACHE": str(cache), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    env.pop("GRIT_EXP_CONF", None)
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    if processes > 1:
        launcher = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        cmd = [launcher, "--standalone", "--nproc_per_node", str(processes), "-m", f"grit_exp.{entry}", *args]
    else:
        cmd = [sys.executable, "-m", f"grit_exp.{entry}", *args]
    proc = subprocess.run(cmd, cwd=tree or ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{'reference' if tree else 'this checkout'}: {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


SIDE_IN_PATH = re.compile(r"/(cache_)?(old|new)/")  # each side's cache and run directories


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not _volatile(k)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    if isinstance(value, str):
        return SIDE_IN_PATH.sub("/<side>/", value)
    return value


def _same(old, new, where: str) -> None:
    old, new = _strip(old), _strip(new)
    if isinstance(old, dict) and isinstance(new, dict):
        missing = sorted(set(old) - set(new))
        assert not missing, f"{where}: keys the reference wrote and this checkout did not: {missing}"
        for key in old:
            _same(old[key], new[key], f"{where}.{key}")
    elif isinstance(old, list) and isinstance(new, list):
        assert len(old) == len(new), f"{where}: {len(old)} entries before, {len(new)} now"
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _same(a, b, f"{where}[{i}]")
    else:
        assert old == new, f"{where}: {old!r} before, {new!r} now"


def _samples_without_paths(path: Path) -> list[dict]:
    """samples.jsonl with the cache-dependent image paths reduced to their names."""
    rows = _jsonl(path)
    for row in rows:
        for key in ("image", "source"):
            if isinstance(row.get(key), str):
                row[key] = Path(row[key]).name
    return rows


def _compare_run_dirs(old: Path, new: Path) -> None:
    _same(_jsonl(old / "metrics.jsonl"), _jsonl(new / "metrics.jsonl"), "metrics.jsonl")
    if (old / "sampled_prompts.jsonl").exists():
        _same(_jsonl(old / "sampled_prompts.jsonl"), _jsonl(new / "sampled_prompts.jsonl"), "sampled_prompts.jsonl")
    old_evals = sorted(p.relative_to(old) for p in old.rglob("metrics.json"))
    assert old_evals == sorted(p.relative_to(new) for p in new.rglob("metrics.json"))
    for rel in old_evals:
        _same(json.loads((old / rel).read_text()), json.loads((new / rel).read_text()), str(rel))
        samples = rel.parent / "samples.jsonl"
        _same(_samples_without_paths(old / samples), _samples_without_paths(new / samples), str(samples))
    for weights in sorted(old.glob("checkpoints/*/model/*.safetensors")):
        from safetensors.torch import load_file

        a, b = load_file(weights), load_file(new / weights.relative_to(old))
        assert a.keys() == b.keys(), weights.relative_to(old)
        for name in a:
            assert a[name].equal(b[name]), f"{weights.relative_to(old)}: tensor {name} differs"


@pytest.fixture(scope="module")
def runs(reference_src, tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Each scenario's run directory by the reference code and by this checkout."""
    base = tmp_path_factory.mktemp("outputs_unchanged")
    out: dict[str, tuple[Path, Path]] = {}
    for side, tree in (("old", reference_src), ("new", None)):
        cache = base / f"cache_{side}"
        train = base / side / "train"
        _run(tree, cache, "train", [*TRAIN, f"hydra.run.dir={train}"])
        zero2 = base / side / "train_zero2"
        _run(tree, cache, "train", [*TRAIN, "cluster=node8", f"hydra.run.dir={zero2}"], processes=2)
        evaluation = base / side / "evaluate"
        _run(tree, cache, "evaluate", ["dataset.eval_num_samples=6", f"model.path={train}/checkpoints/step_2/model",
                                        f"hydra.run.dir={evaluation}"])
        if side == "old":  # the recorded completions both sides replay: the reference's evaluation
            replay_file = base / "replay.jsonl"
            with replay_file.open("w") as f:
                for row in _jsonl(evaluation / "samples.jsonl"):
                    g = row["geometry"]
                    f.write(json.dumps({
                        **{k: row[k] for k in ("question", "answer", "image", "width", "height", "bboxs", "dataset")},
                        "completion": row["completion"], "model_family": row["model_family"],
                        "image_grid_thw": [1, g["input_height"] // 14, g["input_width"] // 14],
                        "completion_tokens": row["completion_tokens"],
                    }) + "\n")
        replay = base / side / "replay"
        _run(tree, cache, "evaluate", ["rollout=replay", f"rollout.path={replay_file}", f"hydra.run.dir={replay}"])
        for name, path in (("train", train), ("train_zero2", zero2), ("evaluate", evaluation), ("replay", replay)):
            out.setdefault(name, (path, path))
            out[name] = (out[name][0], path) if side == "new" else (path, path)
    return out


@pytest.mark.parametrize("scenario", ["train", "train_zero2", "evaluate", "replay"])
def test_outputs_equal_the_reference(runs, scenario):
    old, new = runs[scenario]
    assert old != new
    _compare_run_dirs(old, new)
