"""notebooks/analysis.ipynb runs headlessly (nbclient) on tiny fixture runs and shows tables, curves, pictures."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.helpers.run_dirs import make_evaluate_run, make_training_run

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "analysis.ipynb"


def _outputs(nb) -> tuple[str, int]:
    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images += "image/png" in data
            texts.append(out.get("text", "") + data.get("text/markdown", "") + data.get("text/plain", ""))
    return "\n".join(texts), images


def test_notebook_executes_on_fixture_runs(tmp_path, monkeypatch):
    evaluated = make_evaluate_run(tmp_path / "eval_run", table1={"model": "qwen2_5_vl_3b", "method": "grit"})
    trained = make_training_run(tmp_path / "train_run", model="tiny_qwen2_5_vl")
    monkeypatch.setenv("GRIT_NOTEBOOK_RUNS", os.pathsep.join([str(evaluated), str(trained)]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"), "commit the notebook without outputs"
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text, images = _outputs(nb)
    assert "| Qwen2.5-VL-3B | GRIT | paper | 72.9 / 0.325" in text  # Table 1 with the paper's numbers
    assert "| Qwen2.5-VL-3B | GRIT | Δ | +2.1 / -0.025" in text
    assert "### All datasets" in text and "mme_existence" in text
    assert "Q: question 0?" in text  # a sample's record under its picture
    # 1 curve figure (the training run) + 4 pictures of the evaluate run (3 drawn) + 2 of the training run's last step
    assert images == 1 + 3 + 2
