"""benchmarks/demo_seeds.py reads finished runs as the README's seed table says: change = last evaluation
minus step 0 (the warm start), the mean with its 95 % t-interval, the worst seed, the count of seeds up;
an unfinished run is left out rather than read as a change of zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from demo_seeds import collect, interval, markdown, parse_seeds  # noqa: E402


def write_run(run_dir: Path, acc: tuple[float, float], sampled: tuple[float, float], finished: bool = True) -> None:
    run_dir.mkdir(parents=True)
    records = [{"step": 0, "init/synth_count/acc": 0.0},
               {"step": 0, "eval/synth_count/acc": acc[0], "eval/synth_count/reward_sampled": sampled[0]},
               {"step": 1, "train/reward": 1.0},
               {"step": 40, "eval/synth_count/acc": acc[1], "eval/synth_count/reward_sampled": sampled[1]}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if finished:
        (run_dir / "before_after.txt").write_text("table\n")


def test_parse_seeds():
    assert parse_seeds("0-3,8") == [0, 1, 2, 3, 8]
    assert parse_seeds("5") == [5]


def test_interval_is_the_t_interval_of_the_mean():
    mean, low, high = interval([0.1, 0.2, 0.3])
    # stdev 0.1, n 3, t(0.975, 2) = 4.303
    assert mean == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.2 - 4.303 * 0.1 / 3**0.5, 0.2 + 4.303 * 0.1 / 3**0.5))


def test_collect_change_is_last_minus_step_0_and_skips_unfinished(tmp_path):
    write_run(tmp_path / "default" / "seed_0", acc=(0.5, 0.6), sampled=(2.0, 2.2))
    write_run(tmp_path / "default" / "seed_1", acc=(0.4, 0.3), sampled=(1.9, 2.05))
    write_run(tmp_path / "default" / "seed_2", acc=(0.4, 0.9), sampled=(1.0, 3.0), finished=False)
    result = collect("default", [0, 1, 2, 3], tmp_path)
    assert sorted(result["seeds"]) == [0, 1]
    assert result["seeds"][0]["acc"] == pytest.approx({"step0": 0.5, "last": 0.6, "change": 0.1})
    assert result["seeds"][1]["steps"] == 40
    acc = result["summary"]["acc"]
    assert acc["mean"] == pytest.approx(0.0) and (acc["up"], acc["n"]) == (1, 2)
    assert (acc["worst_seed"], acc["worst"]) == (1, pytest.approx(-0.1))
    sampled = result["summary"]["reward_sampled"]
    assert sampled["mean"] == pytest.approx(0.175) and sampled["up"] == 2
    table = markdown("default", result)
    assert "| 0 | 2.000 -> 2.200 | +0.200 | 0.500 -> 0.600 | +0.100 |" in table
    assert "-0.100 (seed 1); 1 / 2" in table
