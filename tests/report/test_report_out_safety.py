"""`python -m grit_exp.report --out DIR` never overwrites files in a folder it did not write
(before: table1.md, table1.csv, ... of a user's folder were replaced)."""

from __future__ import annotations

from grit_exp.report import main as report_main
from tests.helpers.run_dirs import make_evaluate_run


def test_report_out_never_overwrites_a_users_folder(tmp_path, caplog) -> None:
    runs = tmp_path / "runs"
    make_evaluate_run(runs / "a")
    out = tmp_path / "my_tables"
    out.mkdir()
    (out / "table1.md").write_text("my own table\n")
    assert report_main([str(runs), "--out", str(out)]) == 2
    assert (out / "table1.md").read_text() == "my own table\n"
    assert "holds files the report did not write" in caplog.text
    fresh = tmp_path / "fresh"
    assert report_main([str(runs), "--out", str(fresh)]) == 0
    assert report_main([str(runs), "--out", str(fresh)]) == 0  # its own folder: written again
