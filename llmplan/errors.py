"""Errors people read: every input error names the file, line and column and what was expected."""

from dataclasses import dataclass


class LlmplanError(Exception):
    """An error with a message meant for the user (the CLI prints it and exits 1)."""


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class InputError(LlmplanError):
    """One or more problems in input files; nothing was written."""

    def __init__(self, problems: list[Problem], limit: int = 20):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:limit])
        more = f"\n  … and {len(problems) - limit} more" if len(problems) > limit else ""
        super().__init__(f"{len(problems)} problem(s) in the input; nothing was written:\n{shown}{more}")
