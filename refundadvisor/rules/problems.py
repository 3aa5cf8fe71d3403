"""Problems found in a rule file, and the error that carries them.

Kept apart from rules.py so that commands can catch RulesError without importing the YAML
parser.
"""


from typing import NamedTuple


class Problem(NamedTuple):
    """One thing wrong with a rule file, located."""

    path: str
    line: int
    column: int
    severity: str  # "error" or "warning"
    code: str
    where: str  # the YAML path, e.g. rules[3].when.fact
    message: str

    def format(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{self.path}:{self.line}:{self.column}: {self.severity}[{self.code}]:{where} {self.message}"

    def as_dict(self) -> dict:
        return {
            "path": self.path, "line": self.line, "column": self.column, "severity": self.severity,
            "code": self.code, "where": self.where, "message": self.message,
        }


class RulesError(Exception):
    """A rule file that cannot be used; ``problems`` lists every error (and warning) found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [problem for problem in problems if problem.severity == "error"]
        first = errors[0] if errors else problems[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(first.format() + more)
