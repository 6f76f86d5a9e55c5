"""cfn-lint passes on the templates `python app.py` writes: the notifier's in each
configuration, and the member stack's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.config import STACK_NAME
from infra.scopes import MEMBER_STACK_NAME
from tests.infra.conftest import CONFIGURATIONS, app_output


def test_cfn_lint_passes_on_every_template_the_app_writes() -> None:
    templates = [app_output(name) / f"{STACK_NAME}.template.json" for name in CONFIGURATIONS] + [
        app_output("every option") / f"{MEMBER_STACK_NAME}.template.json"
    ]
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        # W3005: CDK makes a function depend on its role and on the role's policy; the
        # second is what matters (the policy must exist first) and the first is redundant.
        [cfn_lint, *templates, "--format", "parseable", "--ignore-checks", "W3005"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
