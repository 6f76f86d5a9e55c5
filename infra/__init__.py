"""The CDK app's stacks and constructs.

The stack and the functions share one vocabulary (event types, defaults, the poller's
environment names and patterns), defined once in the functions' code root (lambdas/),
which goes on sys.path here, as Lambda puts it there.
"""

import sys
from pathlib import Path

_CODE_ROOT = str(Path(__file__).resolve().parents[1] / "lambdas")
if _CODE_ROOT not in sys.path:
    sys.path.insert(0, _CODE_ROOT)
