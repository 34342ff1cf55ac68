"""Test helper, loaded through PYTHONPATH by test_engines_equivalent.py: every process appends
"<RANK> <path>" to $GRIT_OPEN_TRACE for each file it opens under $GRIT_OPEN_TRACE_UNDER (Python's
"open" audit event, which torch.load's file opening raises). Shows which checkpoint files a rank reads."""

import os
import sys

_out, _under = os.environ.get("GRIT_OPEN_TRACE"), os.environ.get("GRIT_OPEN_TRACE_UNDER")

if _out and _under:

    def _trace(event, args):
        if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.fsdecode(args[0])
        if path.startswith(_under):
            with open(_out, "a") as log:  # the log lies outside _under: no recursion
                log.write(f"{os.environ.get('RANK', '-')} {path}\n")

    sys.addaudithook(_trace)
