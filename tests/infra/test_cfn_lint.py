"""cfn-lint passes on the template `python app.py` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from local.template import synth
from tests.infra.conftest import CONFIGURATIONS


@pytest.mark.parametrize("configuration", list(CONFIGURATIONS))
def test_cfn_lint_passes_on_the_synthesized_template(configuration: str, tmp_path: Path) -> None:
    template = tmp_path / "template.json"
    template.write_text(json.dumps(synth(CONFIGURATIONS[configuration])))
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
