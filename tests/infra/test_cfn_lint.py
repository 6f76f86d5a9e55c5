"""cfn-lint passes on the templates `python app.py` writes: the notifier's in each
configuration, and the member stack's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import STACK_NAME
from infra.scopes import MEMBER_STACK_NAME
from local.template import synth
from tests.infra.conftest import CONFIGURATIONS

STACKS = [(STACK_NAME, name, context) for name, context in CONFIGURATIONS.items()] + [
    (MEMBER_STACK_NAME, "member", {"centralAccount": "111122223333"})
]


@pytest.mark.parametrize(
    ("stack", "context"),
    [(stack, context) for stack, _, context in STACKS],
    ids=[n for _, n, _ in STACKS],
)
def test_cfn_lint_passes_on_the_synthesized_template(
    stack: str, context: dict[str, Any], tmp_path: Path
) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps(synth(context, stack_name=stack)))
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        # W3005: CDK makes a function depend on its role and on the role's policy; the
        # second is what matters (the policy must exist first) and the first is redundant.
        [str(cfn_lint), str(template), "--format", "parseable", "--ignore-checks", "W3005"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
