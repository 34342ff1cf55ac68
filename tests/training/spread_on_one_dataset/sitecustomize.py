"""Test helper, loaded through PYTHONPATH by the torchrun tests (tests/helpers/torchrun.py): registers the reward
term of ../spread_term.py in every process before the training entry reads its config, and installs
the faults the test asked for in the environment (../fault_hooks.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fault_hooks import install  # noqa: E402
from spread_term import register  # noqa: E402

register()
install()
