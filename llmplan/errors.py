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
    """One or more problems in input files. `consequence` says what that meant ("nothing was
    written" for a pipeline run); a command that only reads says nothing of writing."""

    def __init__(self, problems: list[Problem], limit: int = 20, consequence: str | None = "nothing was written"):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:limit])
        more = f"\n  … and {len(problems) - limit} more" if len(problems) > limit else ""
        what = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} {what} in the input" + (f"; {consequence}" if consequence else "")
                         + f":\n{shown}{more}")
