"""Helpers shared by tests in several folders, imported as `tests.helpers.<module>` (pyproject.toml's
pytest `pythonpath` puts the repository root on sys.path).

`configs`: compose an entry's config from conf/ as the entry would; `run_dirs`: small run directories
written by hand (report and notebook tests); `html_dom`: parse a written HTML page. Helpers used by
one folder only stay beside its tests (e.g. tests/data/data_test_helpers.py).
"""
