"""Several files with their own image folders, seeded subsets, OVD answers, dataset configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_test_helpers import good_row, write_jsonl
from omegaconf import OmegaConf
from PIL import Image

from grit_exp.config import DataFileConfig, DatasetConfig
from grit_exp.data.reader import DataError, DataFile, load_dataset_splits, load_rows


@pytest.fixture
def two_sources(tmp_path: Path, image_root: Path) -> list[DataFile]:
    """tallyqa.jsonl (20 rows, images in image_root) and vsr.jsonl (10 rows, images in vsr_images/)."""
    vsr_images = tmp_path / "vsr_images"
    vsr_images.mkdir()
    Image.new("RGB", (40, 30), "white").save(vsr_images / "cat.png")  # same name, other folder, other size
    tally = write_jsonl(tmp_path / "tallyqa.jsonl", [good_row(question=f"tally {i}") for i in range(20)])
    vsr = write_jsonl(
        tmp_path / "vsr.jsonl",
        [
            good_row(
                question=f"vsr {i}", width=40, height=30, bboxs=[[0, 0, 5, 5]], dataset="vsr", answer="yes"
            )
            for i in range(10)
        ],
    )
    return [DataFile(str(tally), str(image_root), "tally"), DataFile(str(vsr), str(vsr_images), "vsr")]


def test_files_are_mixed_in_order_with_their_own_image_roots(
    two_sources: list[DataFile], tmp_path: Path
) -> None:
    rows = load_rows(two_sources)
    assert [r.question for r in rows] == [f"tally {i}" for i in range(20)] + [f"vsr {i}" for i in range(10)]
    assert {r.image for r in rows[:20]} == {str(tmp_path / "images" / "cat.png")}
    assert {r.image for r in rows[20:]} == {str(tmp_path / "vsr_images" / "cat.png")}
    assert rows[20].source == f"{two_sources[1].path}:1"


def test_num_samples_is_a_deterministic_seeded_subset(two_sources: list[DataFile]) -> None:
    def questions(seed: int) -> list[str]:
        return [r.question for r in load_rows(two_sources, num_samples=8, seed=seed)]

    assert questions(0) == questions(0)
    assert questions(0) != questions(1)
    assert len(set(questions(3))) == 8
    every = [r.question for r in load_rows(two_sources)]
    assert [q for q in every if q in questions(0)] == questions(0)  # kept in file order
    assert len(load_rows(two_sources, num_samples=30, seed=5)) == 30


def test_num_samples_beyond_the_rows_names_the_key_and_the_count(two_sources: list[DataFile]) -> None:
    with pytest.raises(DataError, match=r"dataset.num_samples=31 but only 30 rows are available"):
        load_rows(two_sources, num_samples=31)
    with pytest.raises(DataError, match=r"dataset.num_samples=0 must be >= 1"):
        load_rows(two_sources, num_samples=0)


@pytest.mark.parametrize(
    ("answer", "box"),
    [
        ("[1.5, 2, 30, 40]", [1.5, 2, 30, 40]),
        (" [0, 0, 64, 48] ", [0, 0, 64, 48]),
        ("tv", None),
        ("[a, b]", None),
        ("[]", None),
    ],
)
def test_ovd_box_answers_are_parsed(tmp_path: Path, image_root: Path, answer: str, box: list | None) -> None:
    data = write_jsonl(tmp_path / "ovd.jsonl", [good_row(answer=answer, dataset="ovd_position")])
    (row,) = load_rows([DataFile(str(data), str(image_root))])
    assert row.answer == answer and row.answer_box == box


def _dataset_cfg(tmp_path: Path, **changes):
    cfg = OmegaConf.structured(DatasetConfig(name="test"))
    cfg.synthetic.out_dir = str(tmp_path / "synthetic")
    cfg.synthetic.num_train = 10
    cfg.synthetic.num_val = 5
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def test_dataset_splits_from_files(tmp_path: Path, two_sources: list[DataFile]) -> None:
    tally, vsr = (DataFileConfig(path=f.path, image_root=f.image_root, name=f.name) for f in two_sources)
    cfg = _dataset_cfg(
        tmp_path,
        train=[tally, vsr],
        eval=[vsr, DataFileConfig(path=tally.path, image_root=tally.image_root)],
        num_samples=12,
        eval_num_samples=15,
    )
    train, evals = load_dataset_splits(cfg, seed=7)
    assert len(train) == 12
    assert list(evals) == ["vsr", "tallyqa"]  # by name, else by file stem
    assert len(evals["vsr"]) == 10 and len(evals["tallyqa"]) == 15  # eval_num_samples: at most that many


def test_dataset_splits_with_the_synthetic_set(tmp_path: Path, two_sources: list[DataFile]) -> None:
    vsr = DataFileConfig(path=two_sources[1].path, image_root=two_sources[1].image_root, name="vsr")
    cfg = _dataset_cfg(tmp_path, **{"synthetic.enabled": True, "eval": [vsr]})
    train, evals = load_dataset_splits(cfg, seed=0)
    assert len(train) == 10 and {r.dataset for r in train} <= {"synth_count", "synth_spatial", "synth_ovd"}
    assert list(evals) == ["synthetic_val", "vsr"] and len(evals["synthetic_val"]) == 5
    assert all(r.split == "val" and r.gold is not None for r in evals["synthetic_val"])


def test_dataset_config_errors(tmp_path: Path, two_sources: list[DataFile]) -> None:
    with pytest.raises(DataError, match="dataset.train is empty"):
        load_dataset_splits(_dataset_cfg(tmp_path), seed=0)
    vsr = DataFileConfig(path=two_sources[1].path, image_root=two_sources[1].image_root, name="vsr")
    with pytest.raises(DataError, match="both named 'vsr'"):
        load_dataset_splits(_dataset_cfg(tmp_path, train=[vsr], eval=[vsr, vsr]), seed=0)
