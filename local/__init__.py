"""Runners for the notifier outside Lambda: the Personalize emulator, local AWS, the demo,
the command-line tool and the benchmark.

The poller's code root (lambdas/) goes on sys.path, as Lambda puts its code root there.
"""

import sys
from pathlib import Path

_CODE_ROOT = str(Path(__file__).resolve().parents[1] / "lambdas")
if _CODE_ROOT not in sys.path:
    sys.path.insert(0, _CODE_ROOT)
