"""The tool's exit codes, and the error that carries one to the user."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PUBLISH_FAILED = 1
    USAGE = 2
    CREDENTIALS = 3  # no credentials or region, or AWS rejected them
    NOT_FOUND = 4  # the stack, the function or its table
    AWS = 5  # any other AWS error
    CLAIM_LOST = 6  # another poll took over transitions this run had claimed


class CliError(Exception):
    """What went wrong, in words for the user, and the exit code that says it."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code
