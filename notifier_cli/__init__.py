"""A tool for a real AWS account: ask the deployed notifier what its next poll would announce,
run that poll now, or compare each job's live and recorded status (`python -m notifier_cli`).

It runs the poller's own code with the deployed function's configuration, so the poller's
code root (lambdas/) goes on sys.path, as Lambda puts its code root there.
"""

import sys
from pathlib import Path

_CODE_ROOT = str(Path(__file__).resolve().parents[1] / "lambdas")
if _CODE_ROOT not in sys.path:
    sys.path.insert(0, _CODE_ROOT)
