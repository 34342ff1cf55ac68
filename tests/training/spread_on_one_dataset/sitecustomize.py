"""Test helper, loaded through PYTHONPATH by test_dynamic_sampling.py's torchrun test: registers the
reward term of ../spread_term.py in every process before the training entry reads its config."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spread_term import register  # noqa: E402

register()
