"""`python -m notifier_cli poll|status`."""

import sys

from notifier_cli.main import main

sys.exit(main())
