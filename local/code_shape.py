"""The shipped code stays easy to read: no class longer than 150 lines in lambdas/ and
infra/. Run by `make lint`, beside xenon's complexity gate (a fresh process: CPython 3.11's
ast.parse can fail with "recursion depth mismatch" inside a busy test worker)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_CLASS_LINES = 150
SHIPPED = ("lambdas", "infra")


def long_classes(root: Path, folder: str) -> tuple[int, list[str]]:
    """How many classes the folder holds, and those over MAX_CLASS_LINES."""
    seen, long = 0, []
    for path in sorted((root / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                seen += 1
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_CLASS_LINES:
                    long.append(f"{path.relative_to(root)}: {node.name} has {lines} lines")
    return seen, long


def main() -> int:
    root = Path(__file__).parents[1]
    failures = []
    for folder in SHIPPED:
        seen, long = long_classes(root, folder)
        if not seen:
            failures.append(f"{folder}: no classes found; the check would pass on anything")
        failures += long
    for failure in failures:
        print(f"code shape: {failure} (at most {MAX_CLASS_LINES})", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
