"""mypy follows only the aws-cdk-lib modules listed in pyproject.toml (the rest are Any, to
keep a cold type check short), so every CDK module the code imports must be listed there."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ["app.py", "infra", "local", "notifier_cli", "tests"]


def cdk_modules_imported() -> set[str]:
    found: set[str] = set()
    files = [ROOT / name for name in CHECKED if name.endswith(".py")] + [
        path for name in CHECKED if not name.endswith(".py") for path in (ROOT / name).rglob("*.py")
    ]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "aws_cdk"}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aws_cdk"):
                module = node.module or ""
                found.add(module)
                if module == "aws_cdk":  # from aws_cdk import aws_sns, custom_resources, Duration
                    found |= {f"aws_cdk.{a.name}" for a in node.names if a.name[0].islower()}
    return found


def followed() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    followed: set[str] = set()
    for override in config["tool"]["mypy"]["overrides"]:
        if override.get("follow_imports") == "normal":
            followed |= set(override["module"])
    return followed


def test_every_cdk_module_the_code_imports_is_type_checked() -> None:
    imported = cdk_modules_imported()
    assert {"aws_cdk", "aws_cdk.aws_sns", "aws_cdk.assertions"} <= imported  # it finds them
    assert imported - followed() == set()
