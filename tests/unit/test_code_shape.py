"""The shipped code stays easy to read: no class longer than a screenful or two."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MAX_CLASS_LINES = 150
SHIPPED = ("lambdas", "infra")


def classes(folder: str) -> list[tuple[str, int]]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((f"{path.relative_to(ROOT)}:{node.name}", lines))
    return found


@pytest.mark.parametrize("folder", SHIPPED)
def test_no_class_is_longer_than_150_lines(folder: str) -> None:
    found = classes(folder)
    assert found, f"no classes found under {folder}: the check would pass on anything"
    assert [(name, lines) for name, lines in found if lines > MAX_CLASS_LINES] == []
